"""The built-in op packs. Each module is a plugin registered by default, through the
same ``tapegrad_ops`` hook a third-party plugin implements."""
