"""An offline Azure Resource Manager that the real SDK cannot tell apart from Azure."""
