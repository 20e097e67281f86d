"""Rewards: rule verifiers, math answer matching, (later) the soft-constraint reward model."""
