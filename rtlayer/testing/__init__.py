"""Test kits for voice apps: the provider-side phone simulator (``rtlayer.testing.phone``)."""
