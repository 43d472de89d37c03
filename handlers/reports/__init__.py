"""Hazard reports: filing, review by police and grid workers, the reporter told and asked to rate."""
