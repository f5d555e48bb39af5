"""The app's screens: overview, one layer, help."""
