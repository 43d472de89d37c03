"""Data rights: /mydata, /deleteme, erasure on request, and the retention of report places and photos."""
