"""stratus-agent: the host side of Stratus (network agent and its drivers)."""
