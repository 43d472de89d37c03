"""Who people are: onboarding, roles and invites, linked accounts, language."""
