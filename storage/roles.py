"""The roles a person can hold: the one list the schema's CHECK and every permission rule share."""

from __future__ import annotations

RESIDENT = "resident"
VOLUNTEER = "volunteer"
GRID_WORKER = "grid_worker"
POLICE = "police"
ADMIN = "admin"
# In order of rank: merging two accounts keeps the higher of their roles.
ROLES = (RESIDENT, VOLUNTEER, GRID_WORKER, POLICE, ADMIN)
# Who works for the community, and who of them may command (invite, broadcast, lift bans).
STAFF = frozenset({GRID_WORKER, POLICE, ADMIN})
COMMANDERS = frozenset({POLICE, ADMIN})
