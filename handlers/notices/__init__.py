"""Recurring notices (定期通知): /notice and /notices; each occurrence goes out as a broadcast."""
