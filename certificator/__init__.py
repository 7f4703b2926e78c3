"""Internal service: exchanges a user's token and a fresh public key for a short-lived SSH user certificate."""
