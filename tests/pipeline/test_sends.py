"""`customerlens campaigns SENDS --transactions TX`: a CRM send list (no control arm) on simulated transactions.

The transactions are generated with a known campaign effect on the sent customers, who were
chosen by their activity before the send (issue 21).
"""

import json

import numpy as np
import pandas as pd
import pytest

from tests.conftest import cli_in_process

SEND_DAY = 540
WINDOW = 30
DAY0 = pd.Timestamp("2023-01-01")


def simulate_lines(seed: int = 1, n: int = 800, effect: float = 0.3, days: int = 730):
    """Transactions of ``n`` customers over ``days`` (a grocery export's column names) and a send list.

    Customers order at ``lam`` orders per 30 days from a start day; the send (day ``SEND_DAY``) goes to
    customers with a probability that rises with their orders and falls with their days since the
    last order before it; the sent get ``effect`` x ``lam`` extra orders per 30 days in the window.
    """
    rng = np.random.default_rng(seed)
    lam = rng.gamma(1.5, 1 / 1.5, n)
    aov = rng.gamma(2.0, 25.0, n)
    start = rng.uniform(0, SEND_DAY - 30, n)
    counts = rng.poisson(lam * (days - start) / 30)
    who = np.repeat(np.arange(n), counts)
    when = start[who] + rng.uniform(0, 1, len(who)) * (days - start[who])
    before = when < SEND_DAY
    frequency = np.bincount(who[before], minlength=n)
    last = np.full(n, -np.inf)
    np.maximum.at(last, who[before], np.floor(when[before]))
    recency = np.where(frequency > 0, SEND_DAY - last, 999)
    score = -1.5 + 0.9 * np.log1p(frequency) - 0.6 * np.log1p(recency)
    sent = (frequency > 0) & (rng.uniform(size=n) < 1 / (1 + np.exp(-score)))
    extra = rng.poisson(lam * effect * WINDOW / 30 * sent)
    who = np.r_[who, np.repeat(np.arange(n), extra)]
    when = np.r_[when, SEND_DAY + rng.uniform(0, WINDOW, extra.sum())]
    price = rng.gamma(20, 1 / 20, len(who)) * aov[who]
    lines = pd.DataFrame({
        "basket_id": [f"B{j:07d}" for j in range(len(who))], "household_key": [f"{c:05d}" for c in who],
        "product_id": "P1", "quantity": 1, "sales_value": price.round(2),
        "day": (DAY0 + pd.to_timedelta(when, unit="D")).strftime("%Y-%m-%d")})
    rate = lam * WINDOW / 30
    truth = {"orders": float((rate * effect)[sent].mean()), "spend": float((rate * effect * aov)[sent].mean())}
    sends = pd.DataFrame({"household_key": [f"{c:05d}" for c in np.flatnonzero(sent)], "campaign": "spring",
                          "start_date": (DAY0 + pd.Timedelta(days=SEND_DAY)).strftime("%Y-%m-%d")})
    return lines, sends, truth


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    """One seeded file through the CLI. A 95 % interval misses the truth on 1 seed in 20 by design: coverage
    over many seeds is tests/models/test_observational.py's subject (on this simulator, seeds 1-12: 22 of the
    24 intervals of orders and spend cover the truth); seed 3 is one whose intervals do.
    """
    tmp = tmp_path_factory.mktemp("sends")
    lines, sends, truth = simulate_lines(seed=3)
    last_day = pd.Timestamp(lines["day"].max())
    extra = pd.DataFrame({
        # before the transactions begin: refused; near the end: the window is cut; 13 customers: too small
        "household_key": ["00001", "00002", *sends["household_key"].head(40), *sends["household_key"].head(13)],
        "campaign": ["too early", "too early", *["late"] * 40, *["tiny"] * 13],
        "start_date": ["2022-06-01", "2022-06-01", *[(last_day - pd.Timedelta(days=10)).strftime("%Y-%m-%d")] * 40,
                       *[(DAY0 + pd.Timedelta(days=SEND_DAY)).strftime("%Y-%m-%d")] * 13]})
    lines.to_csv(tmp / "transactions.csv", index=False)
    pd.concat([sends, extra]).to_csv(tmp / "campaign_table.csv", index=False)
    out = tmp / "out"
    result = cli_in_process("campaigns", tmp / "campaign_table.csv", "--transactions", tmp / "transactions.csv",
                            "--map", "customer_id=household_key", "--map", "order_id=basket_id",
                            "--map", "order_date=day", "--map", "amount=sales_value",
                            "--window-days", WINDOW, "--currency", "$", "--out", out, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), truth, out


def test_adjusted_effect_covers_the_truth_and_the_plain_difference_does_not(analysed):
    payload, truth, out = analysed
    rows = {(r["campaign"], r["outcome"]): r for r in payload["overall"]}
    for outcome in ("orders", "spend"):
        row = rows[("spring", outcome)]
        assert row["design"] == "observational"
        assert row["lift_ci_low"] <= truth[outcome] <= row["lift_ci_high"], (outcome, row, truth)
        assert row["naive_lift"] > 1.5 * truth[outcome]  # selection on activity inflates it
        assert row["naive_lift"] > row["lift_ci_high"]
        # the window before the send: nothing to see once adjusted
        assert row["placebo_ci_low"] <= 0 <= row["placebo_ci_high"], row
        assert row["max_smd_before"] > 0.1 > row["max_smd_after"]
    lift = pd.read_csv(out / "campaign_lift.csv")
    assert {"design", "naive_lift", "placebo_lift"} <= set(lift.columns)
    assert set(lift.loc[lift["campaign"] == "spring", "segment_by"]) == {"all", "segment_name"}
    balance = pd.read_csv(out / "campaign_balance.csv")
    assert set(balance["covariate"]) >= {"recency_days", "frequency", "monetary", "tenure_days"}


def test_plain_language_and_every_refusal_with_its_reason(analysed):
    payload, _, _ = analysed
    text = " ".join(payload["summary"])
    assert "associated with" in text and "Not a randomised test" in text and "caused" not in text
    refused = {r["campaign"]: r["reason"] for r in payload["refused"]}
    assert "before the transactions' first order" in refused["too early"]
    late = [r for r in payload["overall"] if r["campaign"] == "late"]
    assert late and all(r["window_cut"] and r["window_days"] < WINDOW for r in late)
    assert "the window is cut to" in text
    tiny = [s for s in payload["summary"] if s.startswith("tiny")]
    assert tiny and all("too small to judge" in s for s in tiny)  # never a headline


def test_a_send_list_without_a_customer_column_is_one_clear_line(tmp_path):
    pd.DataFrame({"who": ["1"], "start_date": ["2024-01-01"]}).to_csv(tmp_path / "sends.csv", index=False)
    lines, _, _ = simulate_lines(n=50)
    lines.to_csv(tmp_path / "tx.csv", index=False)
    result = cli_in_process("campaigns", tmp_path / "sends.csv", "--transactions", tmp_path / "tx.csv",
                            "--map", "customer_id=household_key", "--out", tmp_path / "out")
    assert result.returncode != 0
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and "sends.csv" in message and "no customer column" in message
    assert "--customer-col" in message and "who" in message


def test_report_and_dashboard_show_design_naive_against_adjusted_balance_and_placebo(analysed):
    """`cl.run(..., campaigns=SENDS)`: the analysis's own transactions and segments; the report's campaign
    section and the dashboard's campaigns page say it is observational and show the checks.
    """
    from fastapi.testclient import TestClient

    import customerlens as cl
    from customerlens.api.app import create_app
    from customerlens.api.settings import Settings

    _, _, out = analysed
    folder = out.parent
    mapping = {"customer_id": "household_key", "order_id": "basket_id", "order_date": "day", "amount": "sales_value"}
    config = cl.RunConfig.from_options(mapping=mapping, charts=False, value=False, top_n=0)
    run_dir = folder / "run"
    cl.run(folder / "transactions.csv", run_dir, config, campaigns=folder / "campaign_table.csv",
           campaign_options={"window_days": WINDOW}).close()
    lift = pd.read_csv(run_dir / "campaign_lift.csv")
    assert (lift.loc[lift["campaign"] == "spring", "design"] == "observational").all()
    assert (run_dir / "campaign_balance.csv").is_file()
    page = (run_dir / "report.html").read_text()
    section = page[page.index('<section id="campaigns">'):]
    section = section[:section.index("</section>")]
    for words in ("not drawn at random", "plain difference", "adjusted lift", "placebo",
                  "Balance of the covariates", "associated with"):
        assert words in section, words
    with TestClient(create_app(Settings(store=str(run_dir / "customerlens.duckdb")))) as client:
        html = client.get("/campaigns").text
    assert "Observational" in html and 'id="campaign-balance"' in html and "naive lift" in html
