"""The web layer: JSON API, calendar feeds, public pages and the admin form."""
