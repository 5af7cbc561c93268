"""Three honest carrier simulators: an express courier, a postal service and a sea/air
consolidator. Each is registered as an ``ehub.carriers`` plugin like any real carrier."""
