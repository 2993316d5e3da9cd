"""tgpo: the algorithm library of the TGPO reproduction suite.

Teacher-Guided Policy Optimization (Liu et al.): GRPO (Eq. 4) plus a guidance term (Eq. 3), the
student's log-likelihood of the teacher's argmax token on the student's own prefix, added as a
differentiable regulariser (TGPO, Eq. 6) or as stop-gradient reward shaping (TGPO_R, Eq. 5), with the
annealed weight w_t = max(w_init - delta * t, 0) (TGPO-annealing).
"""

__version__ = "0.1.0"
