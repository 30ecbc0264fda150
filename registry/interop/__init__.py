"""The registry as other tools see it: Backstage catalog entities in and out, and whole-registry
backups (a zip that one install exports and another imports)."""
