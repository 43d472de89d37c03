"""Volunteer patrols (群防群治): shifts and series, sign-ups, the waiting list, volunteers and reminders."""
