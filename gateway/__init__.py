"""The embedded policy gateway: routing, policies and adapters in front of hosted APIs."""
