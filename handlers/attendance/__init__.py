"""Attendance on patrol shifts: check-in and check-out, hours and points, no-shows, rosters and statistics."""
