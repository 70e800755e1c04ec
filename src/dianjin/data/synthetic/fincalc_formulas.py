"""FinCalc's formulas: the pure functions behind each question kind (`pct_change`, `cagr`,
`compound_interest`, `future_value`, `present_value`, `annuity_fv`, `loan_payment`, `current_ratio`,
`debt_to_equity`, `gross_margin`, `roe`, `dividend_yield`, `break_even_units`, and the shared
`simple_interest`), usable on their own, and `FORMULAS` (kind -> formula; an example's `params` are
the formula's keyword arguments, so `FORMULAS[ex["kind"]](**ex["params"])` reproduces its exact
answer). Percent results are percent numbers (12.34 for 12.34%). The question generators that call
these are in `fincalc_problems`, the example builder in `fincalc`.
"""

from __future__ import annotations

from collections.abc import Callable

from dianjin.data.synthetic.common import simple_interest


# --- formulas (pure; percent results are percent numbers) --------------------------------------
def pct_change(old: float, new: float) -> float:
    return (new - old) / old * 100


def cagr(start: float, end: float, years: int) -> float:
    return ((end / start) ** (1 / years) - 1) * 100


def compound_interest(principal: float, rate_pct: float, per_year: int, years: int) -> float:
    """Interest earned (not the final amount) with `per_year` compounding periods a year."""
    return principal * ((1 + rate_pct / 100 / per_year) ** (per_year * years) - 1)


def future_value(pv: float, rate_pct: float, years: int) -> float:
    return pv * (1 + rate_pct / 100) ** years


def present_value(fv: float, rate_pct: float, years: int) -> float:
    return fv / (1 + rate_pct / 100) ** years


def annuity_fv(payment: float, rate_pct: float, years: int) -> float:
    """Future value of an ordinary annuity (payments at the end of each year)."""
    r = rate_pct / 100
    return payment * ((1 + r) ** years - 1) / r


def loan_payment(principal: float, rate_pct: float, years: int) -> float:
    """Monthly payment of a fully amortising loan (等额本息)."""
    i, n = rate_pct / 1200, 12 * years
    return principal * i / (1 - (1 + i) ** -n)


def current_ratio(current_assets: float, current_liabilities: float) -> float:
    return current_assets / current_liabilities


def debt_to_equity(total_assets: float, total_liabilities: float) -> float:
    return total_liabilities / (total_assets - total_liabilities)


def gross_margin(revenue: float, cogs: float) -> float:
    return (revenue - cogs) / revenue * 100


def roe(net_income: float, equity_start: float, equity_end: float) -> float:
    return net_income / ((equity_start + equity_end) / 2) * 100


def dividend_yield(price: float, quarterly_dividend: float) -> float:
    return quarterly_dividend * 4 / price * 100


def break_even_units(fixed_cost: float, price: float, variable_cost: float) -> float:
    return fixed_cost / (price - variable_cost)


# The formula behind each kind; `params` of an example are its keyword arguments.
FORMULAS: dict[str, Callable[..., float]] = {
    "pct_change": pct_change,
    "cagr": cagr,
    "simple_interest": simple_interest,
    "compound_interest": compound_interest,
    "future_value": future_value,
    "present_value": present_value,
    "annuity_fv": annuity_fv,
    "loan_payment": loan_payment,
    "current_ratio": current_ratio,
    "debt_to_equity": debt_to_equity,
    "gross_margin": gross_margin,
    "roe": roe,
    "dividend_yield": dividend_yield,
    "break_even_units": break_even_units,
}
