"""WeChat Work (企业微信): crypto, the HTTP API client, the callback endpoint, pacing, and the channel."""
