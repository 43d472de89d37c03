"""Broadcasts: see issue 5 (work in progress)."""

from __future__ import annotations

from handlers.registry import Feature

FEATURE = Feature(name="broadcasts")
