"""The embedded policy gateway (issue 3): routing, policies and adapters in front of hosted APIs."""
