"""RL algorithm pieces: advantage estimators and the policy / value losses.

Each variant is registered by name and has a plain-Python-loop twin (``*_oracle``) that the
tests compare against.
"""

from ifrl.algo.advantages import ESTIMATORS, compute_advantages
from ifrl.algo.losses import kl_penalty, policy_loss, token_logprobs, token_weights, value_loss

__all__ = ["ESTIMATORS", "compute_advantages", "kl_penalty", "policy_loss", "token_logprobs", "token_weights",
           "value_loss"]
