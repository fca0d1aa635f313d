"""The static dashboard: `illuminate-sync dashboard` (see build_dashboard)."""
