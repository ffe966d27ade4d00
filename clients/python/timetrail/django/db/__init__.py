"""``ENGINE: "timetrail.django.db"``: Django's PostgreSQL backend with context comments."""
