"""The overview's and the drill-down's building blocks."""
