"""Police broadcasts (警情通报): /alert, /alerts, the 收到 button and /settings."""
