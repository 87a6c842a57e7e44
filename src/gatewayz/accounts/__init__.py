"""User accounts: login with a Privy identity token, e-mail sign-up, and provisioning."""
