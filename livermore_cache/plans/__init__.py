"""The planners: what each kind of cache sends and how it reads the replies, free of I/O."""
