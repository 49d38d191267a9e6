"""What-if scenarios: a flood at a water level on the DEM, road closures, utility
outages. Each is computed on the city model and stored in ``scenario`` so it can be
reopened and compared."""
