"""Satisfaction surveys (安全感/满意度调查): /survey, residents answering with buttons, /surveys."""
