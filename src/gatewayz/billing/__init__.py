"""Plans, pricing and credits."""
