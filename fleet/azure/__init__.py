"""The only importer of azure.*: credentials, clients, inventory, observation, apply, budget."""
