"""Bradley-Terry ratings from pairwise votes, on the Elo scale, with bootstrap intervals.

A battle is (i, j, score): the score of player i against player j, 1 for a win, 0 for a loss and
0.5 for a tie ("both bad" counts as a tie, as on the Chatbot Arena). The maximum-likelihood
strengths are found by Newton's method on the pairs' totals, with a weak prior: each player has
PRIOR_GAMES virtual ties against a fixed average player, so a perfect record after a few votes
gives a large but finite rating instead of infinity; then put on the Elo scale: 400 points per
factor of 10 in the odds, the players' mean anchored at 1000. The 95% intervals come from
refitting on battles resampled with replacement, widened where needed to the normal
approximation from the likelihood's curvature (a perfect record resamples to itself, so its
bootstrap interval alone would have no width at all); a player's rank is 1 + the number of players whose interval
lies wholly above its own (ranks by interval overlap, as the Chatbot Arena leaderboard does).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SCALE = 400 / math.log(10)  # Elo points per unit of natural-log strength
ANCHOR = 1000.0
RIDGE = 1e-6  # fixes the free offset; the prior does the rest
PRIOR_GAMES = 1.0
Z = {0.9: 1.6449, 0.95: 1.96, 0.99: 2.5758}
MIN_VOTES = 10  # a rating shows after this many votes
PROVISIONAL = 100.0  # and stays provisional while its interval is wider than +- this


def _pair_totals(battles: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """games[i, j] and score[i, j] (i's points against j) summed over battles; both symmetric in games."""
    i, j, s = battles[:, 0].astype(int), battles[:, 1].astype(int), battles[:, 2]
    games = np.zeros((n, n))
    score = np.zeros((n, n))
    np.add.at(games, (i, j), 1.0)
    np.add.at(games, (j, i), 1.0)
    np.add.at(score, (i, j), s)
    np.add.at(score, (j, i), 1.0 - s)
    return games, score


def _newton(games: np.ndarray, score: np.ndarray, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradient and negative Hessian of the log posterior at theta."""
    p = 1.0 / (1.0 + np.exp(theta[None, :] - theta[:, None]))  # p[i, j] = P(i beats j)
    q = 1.0 / (1.0 + np.exp(-theta))  # P(i beats the virtual average player)
    grad = score.sum(axis=1) - (games * p).sum(axis=1) + PRIOR_GAMES * (0.5 - q) - RIDGE * theta
    w = games * p * (1.0 - p)
    hess = np.diag(w.sum(axis=1) + PRIOR_GAMES * q * (1.0 - q) + RIDGE) - w
    return grad, hess


def fit(battles: np.ndarray, n: int, iterations: int = 100) -> np.ndarray:
    """Maximum a posteriori strengths (natural log, mean 0) of n players from (i, j, score) rows."""
    games, score = _pair_totals(battles, n)
    theta = np.zeros(n)
    for _ in range(iterations):
        grad, hess = _newton(games, score, theta)
        step = np.linalg.solve(hess, grad)
        biggest = np.abs(step).max()
        if biggest > 2.0:  # damped: far from the optimum (a near-perfect record) Newton overshoots
            step *= 2.0 / biggest
        theta += step
        if biggest < 1e-9:
            break
    centred: np.ndarray = theta - theta.mean()
    return centred


def to_elo(theta: np.ndarray) -> np.ndarray:
    elo: np.ndarray = ANCHOR + SCALE * (theta - theta.mean())
    return elo


@dataclass(frozen=True)
class Rating:
    player: int
    rating: float
    lower: float
    upper: float
    votes: int
    wins: float  # ties count half
    rank: int

    @property
    def shown(self) -> bool:
        return self.votes >= MIN_VOTES

    @property
    def provisional(self) -> bool:
        return (self.upper - self.lower) / 2 > PROVISIONAL

    @property
    def win_rate(self) -> float:
        return self.wins / self.votes if self.votes else 0.0


def rate(
    battles: Sequence[tuple[int, int, float]], n: int, *, rounds: int = 200, seed: int = 0, level: float = 0.95
) -> list[Rating]:
    """Ratings with `level` bootstrap intervals for players 0..n-1; deterministic for a seed."""
    rows = np.asarray(battles, dtype=float).reshape(-1, 3)
    if n == 0:
        return []
    elo = to_elo(fit(rows, n)) if len(rows) else np.full(n, ANCHOR)
    rng = np.random.default_rng(seed)
    samples = np.empty((rounds, n))
    for r in range(rounds):
        pick = rng.integers(0, len(rows), len(rows)) if len(rows) else np.zeros(0, dtype=int)
        samples[r] = to_elo(fit(rows[pick], n)) if len(rows) else ANCHOR
    tail = (1 - level) / 2 * 100
    lower, upper = np.percentile(samples, tail, axis=0), np.percentile(samples, 100 - tail, axis=0)
    games, score = _pair_totals(rows, n) if len(rows) else (np.zeros((n, n)), np.zeros((n, n)))
    # the normal approximation for the centred ratings: M H^-1 M^T, M the centring matrix
    _, hess = _newton(games, score, (elo - ANCHOR) / SCALE)
    centre = np.eye(n) - 1.0 / n
    se = SCALE * np.sqrt(np.clip(np.diag(centre @ np.linalg.inv(hess) @ centre.T), 0, None))
    half = Z.get(level, 1.96) * se
    lower, upper = np.minimum(lower, elo - half), np.maximum(upper, elo + half)
    votes, wins = games.sum(axis=1), score.sum(axis=1)
    return [
        Rating(
            p,
            float(elo[p]),
            float(lower[p]),
            float(upper[p]),
            int(votes[p]),
            float(wins[p]),
            1 + int(np.sum(lower > upper[p])),
        )
        for p in range(n)
    ]
