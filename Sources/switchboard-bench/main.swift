// Placeholder until the bench tool lands.
print("switchboard-bench: not built yet")
