"""Providers: small Protocols with one required async method each, chosen by configuration."""
