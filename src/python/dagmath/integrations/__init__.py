"""Ready reward functions for Python RL engines: :mod:`.trl` (TRL's ``GRPOTrainer``) and
:mod:`.verl` (verl's ``custom_reward_function``, and a converter to verl's RL Parquet layout).
Neither imports its engine: they only follow its calling convention."""
