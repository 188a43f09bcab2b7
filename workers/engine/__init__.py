"""Pure-Python engines (pandas, torch, opacus, fairlearn); nothing here imports Django or apps/."""
