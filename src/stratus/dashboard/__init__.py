"""stratus-dashboard: the web interface (Horizon's panels) over the Stratus APIs."""
