"""What can be built, by name, without importing what builds it: each module holds one section's registry,
the options classes of its in-tree components and their declarations (`Registry.declare`: the builder is
imported on first use), so `nclab options` and config validation import no model or dataset library."""
