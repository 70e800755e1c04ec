"""Small synthetic CFLUE-, FinQA- and CCC-style sets the project writes itself (the CPU demo's data).

The demo (issue 7) must run on a fresh clone with no data directory, and the real CFLUE file is
CC BY-NC-SA (it cannot ship with an MIT project) while the CCC set was never released. So we
generate stand-ins from templates and small fact tables written here, in each benchmark's REAL
file schema, so the task loaders (`get_task(name).load(path)`), the data pipeline and
`dianjin eval --data-dir` read them unchanged. When a real data directory is given, the real
files are used instead; these sets only exercise the pipeline, they measure nothing about finance.

Generators, each deterministic: record i depends only on (seed, i) (`random.Random(f"<set>:{seed}:{i}")`),
and kinds (and languages / labels) cycle so every kind appears in the first few records:

- `cflue_style(n, seed)`: CFLUE knowledge.json records `{名称, task, question, choices, answer,
  analysis}`; `task` is 单项选择题 / 多项选择题 / 判断题, `choices` a Python dict literal STRING
  (as in CFLUE), `answer` sorted letters, `analysis` an explanation of every option. Kinds
  (`CFLUE_KINDS`): classification questions from `TAXONOMIES` (货币政策工具, 会计要素, 税种,
  证券品种, 金融市场, 银行风险; "belongs to", "does not belong to", select-all, true/false),
  statements from `TOPICS` (each fact has a true and a false wording and a reason), and
  calculations from `CALCS` (simple interest, real rate, deposit creation, quick ratio, equity
  after a transaction, current yield, VAT payable, bill discount) with seeded numbers and
  distractors from common mistakes. One block of len(CFLUE_KINDS) records in four is English.
  Deviation: CFLUE has no English questions; ours are bilingual on purpose (the model is).
- `finqa_style(n, seed)`: FinQA records `{id, filename, pre_text, post_text, table, table_ori,
  qa: {question, answer, explanation, exe_ans, program, program_re, gold_inds, ann_table_rows,
  ann_text_rows}}` in English over invented company tables (income statement, segments, balance
  sheet, roll-forward; FinQA's lower-case, spaced style, "$ 1,234" cells). Questions
  (`FINQA_TEMPLATES`): percentage change, difference, ratio, share of a total, change in a share,
  table_sum, table_average, greater (yes/no, across years and across rows), margins, working
  capital / current ratio, and two from the text (share repurchase cost, annual dividend).
  `exe_ans` is `dianjin.finqa_program.execute(program, table)`, so it matches by construction;
  `answer` (the human answer) is exe_ans written with the fewest decimals within 0.05%.
- `ccc_style(n, seed)`: CCC JSONL records `{id, dialogue, label, findings}` (docs/ccc_schema.md,
  rules = `dianjin.tasks.ccc.DEFAULT_RULES`, so no `rules` field), even i violation, odd i
  compliant; scenarios (`CCC_SCENARIOS`, each aimed at one default rule, information security
  twice) cycle so each gets both labels: the customer threatens a regulator complaint / social
  media / legal action, asks to complain to a supervisor, asks for an explanation again, asks
  about a product's returns, needs login help, asks about a relative's accounts. The agent's key
  reply follows the rule or breaks it (dissuades, mocks, threatens, refuses a ticket, promises
  returns, asks for an SMS code, leaks data...). `findings` list every rule the reply touches,
  triggered exactly when breached (so the label always agrees with them).

Writers: `write_cflue` (JSON array), `write_finqa` (JSON array), `write_ccc` (JSONL), and
`write_demo_sets(out_dir, n_cflue, n_finqa, n_ccc, seed)` writing cflue/knowledge.json,
finqa/test.json and ccc/ccc.jsonl (the layout of ../shared/data: each is the file
`dianjin.eval.specs.resolve_data` picks for its task). `python -m dianjin.data.synthetic OUT_DIR`
does the same from the shell.
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from dianjin.finqa_program import execute
from dianjin.io import atomic_write_text, write_jsonl
from dianjin.numbers import round_half_up
from dianjin.tasks.ccc import COMPLIANT, DEFAULT_RULES, VIOLATION

Record = dict[str, Any]
LETTERS = "ABCDEFG"
LANG_CYCLE = ("zh", "en", "zh", "zh")  # one block in four is English: "mostly Chinese"


def _t(lang: str, zh: str, en: str) -> str:
    return zh if lang == "zh" else en


def _num(x: float) -> str:
    """A number as written in a question or a FinQA program: 1500, 4.25 (no thousands commas)."""
    return str(int(x)) if float(x).is_integer() else f"{x:.10g}"


def _f2(x: float) -> str:
    """Two decimals, rounded half-up: the form of every CFLUE calculation option."""
    return f"{round_half_up(x, 2):.2f}"


def _check_n(n: int, what: str) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"{what}: n must be a non-negative int, got {n!r}")


# =================================================================================================
# CFLUE style
# =================================================================================================
SINGLE, MULTI, TF = "单项选择题", "多项选择题", "判断题"
TF_CHOICES = {"zh": {"A": "对", "B": "错"}, "en": {"A": "True", "B": "False"}}


@dataclass(frozen=True)
class Group:
    """One category of a taxonomy and its members, each as (zh, en)."""

    zh: str
    en: str
    members: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Taxonomy:
    exam: str  # CFLUE's 名称
    noun_zh: str  # what the options are: 选项 / 税种 / 情形
    noun_en: str
    groups: tuple[Group, ...]


TAXONOMIES: dict[str, Taxonomy] = {
    "monetary_tools": Taxonomy("经济师（金融专业）", "货币政策工具", "instruments", (
        Group("一般性货币政策工具", "general monetary policy instruments", (
            ("法定存款准备金率", "the statutory reserve requirement ratio"), ("再贴现政策", "rediscount policy"),
            ("公开市场操作", "open market operations"))),
        Group("选择性货币政策工具", "selective monetary policy instruments", (
            ("消费者信用控制", "consumer credit control"), ("证券市场信用控制", "securities market credit control"),
            ("不动产信用控制", "real estate credit control"), ("优惠利率", "preferential interest rates"))),
        Group("直接信用控制工具", "direct credit control instruments", (
            ("信用配额", "credit quotas"), ("利率最高限额", "interest rate ceilings"),
            ("流动性比率", "liquidity ratio requirements"), ("直接干预", "direct intervention"))),
        Group("间接信用指导工具", "indirect credit guidance instruments", (
            ("道义劝告", "moral suasion"), ("窗口指导", "window guidance"))),
    )),
    "accounting_elements": Taxonomy("初级会计职称", "会计科目", "accounts", (
        Group("资产", "assets", (
            ("应收账款", "accounts receivable"), ("存货", "inventories"), ("固定资产", "fixed assets"),
            ("预付账款", "prepayments to suppliers"), ("无形资产", "intangible assets"))),
        Group("负债", "liabilities", (
            ("应付账款", "accounts payable"), ("短期借款", "short-term borrowings"),
            ("预收账款", "advances from customers"), ("应付职工薪酬", "employee benefits payable"),
            ("应交税费", "taxes payable"))),
        Group("所有者权益", "owners' equity", (
            ("实收资本", "paid-in capital"), ("资本公积", "capital reserve"), ("盈余公积", "surplus reserve"),
            ("未分配利润", "undistributed profit"))),
        Group("费用", "expenses", (
            ("管理费用", "administrative expenses"), ("销售费用", "selling expenses"), ("财务费用", "finance costs"))),
    )),
    "tax_categories": Taxonomy("税务师", "税种", "taxes", (
        Group("商品和劳务税类", "taxes on goods and services", (
            ("增值税", "value-added tax"), ("消费税", "consumption tax"), ("关税", "customs duty"))),
        Group("所得税类", "income taxes", (("企业所得税", "enterprise income tax"), ("个人所得税", "individual income tax"))),
        Group("财产和行为税类", "property and transaction taxes", (
            ("房产税", "house property tax"), ("车船税", "vehicle and vessel tax"), ("印花税", "stamp duty"),
            ("契税", "deed tax"))),
        Group("资源税和环境保护税类", "resource and environmental taxes", (
            ("资源税", "resource tax"), ("环境保护税", "environmental protection tax"),
            ("城镇土地使用税", "urban land use tax"))),
        Group("特定目的税类", "special-purpose taxes", (
            ("城市维护建设税", "urban maintenance and construction tax"), ("车辆购置税", "vehicle purchase tax"),
            ("耕地占用税", "farmland occupation tax"))),
    )),
    "securities": Taxonomy("证券从业资格", "证券品种", "securities", (
        Group("股票", "equity securities", (("普通股", "common stock"), ("优先股", "preferred stock"))),
        Group("债券", "debt securities", (
            ("国债", "treasury bonds"), ("地方政府债券", "local government bonds"), ("公司债券", "corporate bonds"),
            ("金融债券", "financial bonds"))),
        Group("金融衍生工具", "financial derivatives", (
            ("股指期货", "stock index futures"), ("期权合约", "option contracts"), ("远期合约", "forward contracts"),
            ("利率互换", "interest rate swaps"))),
        Group("证券投资基金", "securities investment funds", (
            ("货币市场基金", "money market funds"), ("交易型开放式指数基金（ETF）", "exchange-traded funds (ETFs)"),
            ("封闭式基金", "closed-end funds"))),
    )),
    "financial_markets": Taxonomy("银行从业资格", "金融市场", "markets", (
        Group("货币市场", "money markets", (
            ("同业拆借市场", "the interbank lending market"), ("回购协议市场", "the repo market"),
            ("商业票据市场", "the commercial paper market"), ("大额可转让定期存单市场", "the negotiable CD market"),
            ("短期政府债券市场", "the treasury bill market"))),
        Group("资本市场", "capital markets", (
            ("股票市场", "the stock market"), ("中长期债券市场", "the medium- and long-term bond market"))),
        Group("金融衍生品市场", "derivatives markets", (
            ("期货市场", "the futures market"), ("期权市场", "the options market"), ("互换市场", "the swap market"))),
    )),
    "bank_risks": Taxonomy("银行从业资格（风险管理）", "情形", "situations", (
        Group("信用风险", "credit risk", (
            ("借款人到期不能偿还贷款本息", "a borrower fails to repay loan principal and interest when due"),
            ("债券发行人违约", "a bond issuer defaults"),
            ("交易对手未能履行衍生品合约", "a counterparty fails to perform a derivatives contract"))),
        Group("市场风险", "market risk", (
            ("利率不利变动导致债券组合贬值", "adverse interest-rate moves reduce the value of the bond portfolio"),
            ("汇率波动导致外币资产损失", "exchange-rate swings cause losses on foreign-currency assets"),
            ("股票价格下跌导致自营持仓亏损", "falling share prices cause losses on proprietary positions"))),
        Group("操作风险", "operational risk", (
            ("员工内部欺诈", "internal fraud by an employee"),
            ("信息系统故障导致交易中断", "an IT system failure interrupts transactions"),
            ("外部人员伪造票据诈骗", "outsiders commit fraud with forged bills"))),
        Group("流动性风险", "liquidity risk", (
            ("存款集中大量提取导致银行无法及时支付", "a run of deposit withdrawals leaves the bank unable to pay in time"),
            ("无法以合理成本及时获得充足资金", "the bank cannot raise enough funds in time at a reasonable cost"))),
    )),
}


@dataclass(frozen=True)
class Fact:
    """A statement with a true and a false wording and the reason, in both languages."""

    true_zh: str
    false_zh: str
    why_zh: str
    true_en: str
    false_en: str
    why_en: str

    def text(self, lang: str, true: bool) -> str:
        return getattr(self, f"{'true' if true else 'false'}_{lang}")

    def why(self, lang: str) -> str:
        return getattr(self, f"why_{lang}")


@dataclass(frozen=True)
class Topic:
    zh: str
    en: str
    exam: str
    facts: tuple[Fact, ...]


TOPICS: dict[str, Topic] = {
    "monetary_policy": Topic("货币政策", "monetary policy", "经济师（金融专业）", (
        Fact("提高法定存款准备金率会降低货币乘数，属于紧缩性货币政策操作。",
             "提高法定存款准备金率会提高货币乘数，属于扩张性货币政策操作。",
             "法定存款准备金率上升后，商业银行可用于放贷的资金减少，货币乘数下降，货币供应量收缩，因此是紧缩性操作。",
             "Raising the statutory reserve requirement ratio lowers the money multiplier and is a contractionary policy action.",
             "Raising the statutory reserve requirement ratio raises the money multiplier and is an expansionary policy action.",
             "A higher reserve ratio leaves banks less money to lend, so the money multiplier and the money supply fall: "
             "the action is contractionary."),
        Fact("中央银行在公开市场上买入国债，会增加基础货币投放。",
             "中央银行在公开市场上买入国债，会减少基础货币投放。",
             "央行买入国债时向卖方支付资金，商业银行准备金增加，基础货币随之增加；卖出国债才会回笼基础货币。",
             "When the central bank buys government bonds in the open market, the monetary base increases.",
             "When the central bank buys government bonds in the open market, the monetary base decreases.",
             "Paying for the bonds adds to banks' reserves, so the monetary base rises; selling bonds is what drains it."),
        Fact("降低再贴现率会鼓励商业银行向中央银行融资，具有扩张信用的作用。",
             "降低再贴现率会抑制商业银行向中央银行融资，具有收缩信用的作用。",
             "再贴现率是商业银行向央行融资的成本，下调后融资成本降低，商业银行更愿意向央行融资并扩大放贷。",
             "Lowering the rediscount rate encourages commercial banks to borrow from the central bank and tends to expand credit.",
             "Lowering the rediscount rate discourages commercial banks from borrowing from the central bank and tends to "
             "contract credit.",
             "The rediscount rate is the banks' cost of borrowing from the central bank; cutting it makes that borrowing "
             "cheaper, so banks borrow and lend more."),
        Fact("窗口指导属于间接信用指导，不具有法律强制力。",
             "窗口指导属于直接信用控制，具有法律强制力。",
             "窗口指导是央行通过劝告和建议影响商业银行信贷行为的方式，属于间接信用指导，没有法律约束力。",
             "Window guidance is an indirect credit guidance tool and is not legally binding.",
             "Window guidance is a direct credit control tool and is legally binding.",
             "Window guidance works through the central bank's advice and persuasion, so it is indirect guidance "
             "without legal force."),
        Fact("法定存款准备金率、再贴现和公开市场操作是中央银行的三大一般性货币政策工具。",
             "消费者信用控制、再贴现和公开市场操作是中央银行的三大一般性货币政策工具。",
             "一般性货币政策工具（“三大法宝”）是法定存款准备金率、再贴现和公开市场操作；消费者信用控制属于选择性货币政策工具。",
             "The three general monetary policy instruments are the reserve requirement ratio, rediscounting and open "
             "market operations.",
             "The three general monetary policy instruments are consumer credit control, rediscounting and open market "
             "operations.",
             "The classic three tools are reserve requirements, rediscounting and open market operations; consumer credit "
             "control is a selective instrument."),
    )),
    "bonds": Topic("债券", "bonds", "证券从业资格", (
        Fact("在其他条件不变时，债券价格与市场利率呈反向变动关系。",
             "在其他条件不变时，债券价格与市场利率呈同向变动关系。",
             "债券价格是未来现金流按市场利率折现的现值，市场利率上升时现值下降，因此二者反向变动。",
             "Other things equal, bond prices move in the opposite direction to market interest rates.",
             "Other things equal, bond prices move in the same direction as market interest rates.",
             "A bond's price is the present value of its cash flows discounted at the market rate, so a higher rate "
             "means a lower price."),
        Fact("其他条件相同时，久期越长的债券，其价格对利率变动越敏感。",
             "其他条件相同时，久期越长的债券，其价格对利率变动越不敏感。",
             "久期衡量债券价格对利率变动的敏感程度，价格变动率约等于负的修正久期乘以利率变动，久期越长价格波动越大。",
             "Other things equal, the longer a bond's duration, the more sensitive its price is to interest-rate changes.",
             "Other things equal, the longer a bond's duration, the less sensitive its price is to interest-rate changes.",
             "Duration measures price sensitivity: the percentage price change is about minus the modified duration "
             "times the change in rates."),
        Fact("债券的市场价格低于面值（折价）时，其到期收益率高于票面利率。",
             "债券的市场价格低于面值（折价）时，其到期收益率低于票面利率。",
             "折价买入的投资者除获得票息外，到期还能获得面值与买价之差，因此到期收益率高于票面利率。",
             "When a bond trades below par (at a discount), its yield to maturity is higher than its coupon rate.",
             "When a bond trades below par (at a discount), its yield to maturity is lower than its coupon rate.",
             "A discount buyer earns the coupons plus the rise of the price to par, so the yield exceeds the coupon rate."),
        Fact("零息债券的麦考利久期等于其剩余期限。",
             "零息债券的麦考利久期小于其剩余期限。",
             "零息债券只在到期时有一笔现金流，全部权重都在到期日，所以麦考利久期等于剩余期限。",
             "The Macaulay duration of a zero-coupon bond equals its remaining maturity.",
             "The Macaulay duration of a zero-coupon bond is shorter than its remaining maturity.",
             "A zero-coupon bond has a single cash flow at maturity, so all the weight sits there and the duration "
             "equals the maturity."),
        Fact("债券持有人是发行人的债权人，到期有权收回本金和利息。",
             "债券持有人是发行公司的股东，有权参与公司的经营决策。",
             "债券是债权债务凭证，持有人是债权人，享有按约定收回本息的权利，一般不参与经营决策；参与经营决策的是股东。",
             "Bondholders are creditors of the issuer and are entitled to repayment of principal and interest.",
             "Bondholders are shareholders of the issuing company and may vote on its management decisions.",
             "A bond is a debt instrument: its holder is a creditor entitled to principal and interest, not an owner "
             "with a say in management."),
    )),
    "accounting": Topic("会计要素与会计基础", "accounting basics", "初级会计职称", (
        Fact("会计恒等式为：资产 = 负债 + 所有者权益。",
             "会计恒等式为：资产 = 负债 − 所有者权益。",
             "企业的资产来源于债权人（负债）和所有者（所有者权益）两个方面，因此资产总额等于负债与所有者权益之和。",
             "The accounting equation is: assets = liabilities + owners' equity.",
             "The accounting equation is: assets = liabilities − owners' equity.",
             "A company's assets are financed either by creditors (liabilities) or by owners (equity), so assets equal "
             "the sum of the two."),
        Fact("预收账款属于企业的负债。",
             "预收账款属于企业的资产。",
             "预收账款是企业预先收取、需要在以后交付商品或提供服务来履行的义务，因此是一项负债。",
             "Advances received from customers are a liability of the company.",
             "Advances received from customers are an asset of the company.",
             "An advance received obliges the company to deliver goods or services later, so it is a liability."),
        Fact("计提固定资产折旧会减少企业当期利润。",
             "计提固定资产折旧会增加企业当期利润。",
             "折旧计入当期成本或费用，费用增加使当期利润减少。",
             "Recording depreciation of fixed assets reduces the current period's profit.",
             "Recording depreciation of fixed assets increases the current period's profit.",
             "Depreciation is charged to costs or expenses, and higher expenses mean lower profit."),
        Fact("在权责发生制下，收入在实现时确认，不论款项是否已经收到。",
             "在权责发生制下，收入只有在收到款项时才能确认。",
             "权责发生制以权利和责任的发生为确认标准；在收到款项时才确认收入的是收付实现制。",
             "Under the accrual basis, revenue is recognised when earned, whether or not cash has been received.",
             "Under the accrual basis, revenue can be recognised only when cash is received.",
             "Accrual accounting recognises revenue when it is earned; recognising it only on receipt of cash is the "
             "cash basis."),
        Fact("企业以银行存款偿还短期借款，资产和负债同时等额减少，所有者权益不变。",
             "企业以银行存款偿还短期借款，资产减少，所有者权益也随之减少。",
             "偿还借款使银行存款（资产）和短期借款（负债）等额减少，不涉及所有者权益。",
             "When a company repays a short-term loan from its bank deposits, assets and liabilities fall by the same "
             "amount and owners' equity is unchanged.",
             "When a company repays a short-term loan from its bank deposits, assets fall and owners' equity falls as well.",
             "The repayment lowers bank deposits (an asset) and short-term borrowings (a liability) equally; equity is "
             "not involved."),
    )),
    "taxation": Topic("税收制度", "taxation", "税务师", (
        Fact("增值税属于价外税，消费税属于价内税。",
             "增值税属于价内税，消费税属于价外税。",
             "增值税的计税依据是不含增值税的销售额，税款在价格之外单独体现；消费税包含在商品价格之中，是价内税。",
             "VAT is charged on top of the price, whereas consumption tax is included in the price.",
             "VAT is included in the price, whereas consumption tax is charged on top of the price.",
             "VAT is computed on sales excluding VAT and shown separately; consumption tax is part of the price."),
        Fact("增值税一般纳税人当期应纳税额等于当期销项税额减去当期进项税额。",
             "增值税一般纳税人当期应纳税额等于当期销项税额加上当期进项税额。",
             "一般计税方法下，应纳税额 = 当期销项税额 − 当期进项税额，进项税额可以抵扣。",
             "For a general VAT taxpayer, VAT payable equals output VAT minus deductible input VAT.",
             "For a general VAT taxpayer, VAT payable equals output VAT plus input VAT.",
             "Under the general method, VAT payable = output VAT − input VAT: input VAT is deductible."),
        Fact("企业所得税的计税依据是应纳税所得额。",
             "企业所得税的计税依据是企业的营业收入总额。",
             "应纳税所得额 = 收入总额 − 不征税收入 − 免税收入 − 各项扣除 − 允许弥补的以前年度亏损，并非营业收入总额。",
             "The tax base of enterprise income tax is taxable income.",
             "The tax base of enterprise income tax is total operating revenue.",
             "Taxable income is total income less non-taxable and exempt income, deductions and allowable past losses, "
             "not total revenue."),
        Fact("个人所得税的综合所得（如工资、薪金所得）适用超额累进税率。",
             "个人所得税的综合所得（如工资、薪金所得）适用单一比例税率。",
             "综合所得适用3%至45%的七级超额累进税率。",
             "Comprehensive income such as wages and salaries is taxed at progressive rates under individual income tax.",
             "Comprehensive income such as wages and salaries is taxed at a single flat rate under individual income tax.",
             "Comprehensive income is taxed at seven progressive brackets from 3% to 45%."),
        Fact("关税属于商品和劳务税类。",
             "关税属于所得税类。",
             "关税以进出口货物的价格为计税依据，与增值税、消费税同属商品和劳务税类。",
             "Customs duty is a tax on goods and services.",
             "Customs duty is an income tax.",
             "Customs duty is levied on the value of imported or exported goods, like VAT and consumption tax."),
    )),
    "investment": Topic("投资与风险", "investment and risk", "基金从业资格", (
        Fact("系统性风险无法通过分散投资消除。",
             "系统性风险可以通过充分分散投资完全消除。",
             "系统性风险来自影响整个市场的因素（如利率、经济周期），分散投资只能降低非系统性风险。",
             "Systematic risk cannot be eliminated by diversification.",
             "Systematic risk can be fully eliminated by diversifying widely.",
             "Systematic risk comes from market-wide factors such as rates and the business cycle; diversification only "
             "reduces unsystematic risk."),
        Fact("看涨期权的买方有权利但没有义务按行权价买入标的资产。",
             "看涨期权的买方有义务按行权价买入标的资产。",
             "期权买方支付权利金获得的是权利而不是义务；履约义务在期权卖方。",
             "The buyer of a call option has the right, but not the obligation, to buy the underlying at the strike price.",
             "The buyer of a call option is obliged to buy the underlying at the strike price.",
             "The premium buys a right, not an obligation; the obligation to perform lies with the option writer."),
        Fact("β系数大于1的股票，其价格波动通常大于市场整体波动。",
             "β系数大于1的股票，其价格波动通常小于市场整体波动。",
             "β衡量股票收益对市场收益的敏感度，β大于1表示股票的波动幅度大于市场。",
             "A stock with a beta above 1 usually moves more than the market as a whole.",
             "A stock with a beta above 1 usually moves less than the market as a whole.",
             "Beta measures a stock's sensitivity to the market; above 1 means larger swings than the market."),
        Fact("其他条件不变时，组合中资产之间的相关系数越低，分散风险的效果越好。",
             "其他条件不变时，组合中资产之间的相关系数越高，分散风险的效果越好。",
             "相关系数越低，各资产收益的波动越能相互抵消，组合的方差越小。",
             "Other things equal, the lower the correlation between the assets in a portfolio, the greater the "
             "diversification benefit.",
             "Other things equal, the higher the correlation between the assets in a portfolio, the greater the "
             "diversification benefit.",
             "The lower the correlation, the more the assets' swings offset each other and the smaller the portfolio "
             "variance."),
        Fact("开放式基金的投资者可以按基金份额净值申购和赎回基金份额。",
             "开放式基金的份额只能在证券交易所按市价买卖，不能申购和赎回。",
             "开放式基金规模不固定，投资者可按净值向基金管理人申购、赎回；只能在交易所按市价买卖的是封闭式基金。",
             "Investors in an open-end fund can subscribe for and redeem shares at net asset value.",
             "Open-end fund shares can only be traded on an exchange at market prices and cannot be subscribed or redeemed.",
             "An open-end fund issues and redeems shares at NAV; trading only on an exchange describes a closed-end fund."),
    )),
}


@dataclass(frozen=True)
class Calc:
    """A calculation: a context, a question with a blank, a claim for true/false, answer and mistakes."""

    exam: str
    context: str  # the facts given
    ask: str  # the question, with a blank "（ ）" (zh) or "____" (en)
    claim: str  # a true/false statement, `{value}` where the number goes
    value: float
    percent: bool  # the value is a percent number; options end in "%"
    mistakes: tuple[float, ...]  # common wrong results, the distractors
    steps: tuple[str, ...]  # the worked solution


def _calc_simple_interest(rng: random.Random, lang: str) -> Calc:
    p, r, t = rng.randrange(10_000, 500_001, 1000), rng.randrange(150, 451, 5) / 100, rng.randint(2, 5)
    v = p * r / 100 * t
    return Calc(
        "银行从业资格",
        _t(lang, f"某客户将{p}元存入银行{t}年期定期存款，年利率为{_num(r)}%，按单利计息。",
           f"A customer deposits ${p} in a {t}-year time deposit at a simple annual interest rate of {_num(r)}%."),
        _t(lang, "到期时该客户可获得的利息为（ ）元。", "The interest received at maturity is ____ dollars."),
        _t(lang, "到期时该客户可获得的利息为{value}元。", "The interest received at maturity is {value} dollars."),
        v, False, (p * ((1 + r / 100) ** t - 1), p * r / 100, p * (1 + r / 100 * t)),
        (_t(lang, "单利利息 = 本金 × 年利率 × 年数。", "Simple interest = principal × annual rate × years."),
         f"{p} × {_num(r)}% × {t} = {_f2(v)}" + _t(lang, "（元）。", " dollars.")),
    )


def _calc_real_rate(rng: random.Random, lang: str) -> Calc:
    i = rng.randrange(200, 801, 5) / 100
    pi = rng.choice([x / 100 for x in range(50, 601, 10) if abs(x / 100 - i) >= 0.3])
    v = i - pi
    return Calc(
        "经济师（金融专业）",
        _t(lang, f"某年一年期存款的名义利率为{_num(i)}%，同期通货膨胀率为{_num(pi)}%。",
           f"The nominal one-year deposit rate is {_num(i)}% and inflation over the same year is {_num(pi)}%."),
        _t(lang, "按近似公式计算，实际利率为（ ）。", "Using the approximation formula, the real interest rate is ____."),
        _t(lang, "按近似公式计算，实际利率为{value}。", "Using the approximation formula, the real interest rate is {value}."),
        v, True, (i + pi, pi - i, i),
        (_t(lang, "实际利率 ≈ 名义利率 − 通货膨胀率。", "Real rate ≈ nominal rate − inflation rate."),
         f"{_num(i)}% − {_num(pi)}% = {_f2(v)}%" + _t(lang, "。", ".")),
    )


def _calc_deposit_creation(rng: random.Random, lang: str) -> Calc:
    d, rr = rng.randrange(100, 1001, 10), rng.choice((8.0, 10.0, 12.5, 15.0, 20.0, 25.0))
    v = d / (rr / 100)
    return Calc(
        "经济师（金融专业）",
        _t(lang, f"某商业银行吸收原始存款{d}万元，法定存款准备金率为{_num(rr)}%，不考虑超额准备金和现金漏损。",
           f"A bank takes in an original deposit of ${d} thousand. The required reserve ratio is {_num(rr)}%; "
           "ignore excess reserves and cash leakage."),
        _t(lang, "银行体系最多能创造的存款总额（含原始存款）为（ ）万元。",
           "The maximum total deposits the banking system can create, including the original deposit, is ____ "
           "thousand dollars."),
        _t(lang, "银行体系最多能创造的存款总额（含原始存款）为{value}万元。",
           "The maximum total deposits the banking system can create, including the original deposit, is {value} "
           "thousand dollars."),
        v, False, (d * rr / 100, v - d, d * (1 + rr / 100)),
        (_t(lang, "存款总额 = 原始存款 ÷ 法定存款准备金率。", "Total deposits = original deposit ÷ required reserve ratio."),
         f"{d} ÷ {_num(rr)}% = {_f2(v)}" + _t(lang, "（万元）。", ".")),
    )


def _calc_quick_ratio(rng: random.Random, lang: str) -> Calc:
    ca = rng.randrange(800, 6001, 10)
    inv = round(ca * rng.uniform(0.2, 0.5))
    cl = round(ca / rng.uniform(1.2, 2.5))
    v = (ca - inv) / cl
    return Calc(
        "注册会计师",
        _t(lang, f"某公司年末流动资产为{ca}万元，其中存货{inv}万元，流动负债为{cl}万元。",
           f"At year end a company has current assets of ${ca} thousand, of which inventories are ${inv} thousand, "
           f"and current liabilities of ${cl} thousand."),
        _t(lang, "该公司的速动比率为（ ）。", "The company's quick ratio is ____."),
        _t(lang, "该公司的速动比率为{value}。", "The company's quick ratio is {value}."),
        v, False, (ca / cl, inv / cl, cl / (ca - inv)),
        (_t(lang, "速动比率 = （流动资产 − 存货）÷ 流动负债。", "Quick ratio = (current assets − inventories) ÷ current liabilities."),
         f"({ca} − {inv}) ÷ {cl} = {ca - inv} ÷ {cl} = {_f2(v)}" + _t(lang, "。", ".")),
    )


def _calc_equity_after(rng: random.Random, lang: str) -> Calc:
    a = rng.randrange(1000, 10_001, 50)
    liab = round(a * rng.uniform(0.3, 0.7) / 10) * 10
    x = rng.randrange(50, min(liab, 800), 10)
    v = a - liab
    return Calc(
        "初级会计职称",
        _t(lang, f"某企业月初资产总额为{a}万元，负债总额为{liab}万元。本月以银行存款偿还短期借款{x}万元。",
           f"At the start of the month a company has total assets of ${a} thousand and total liabilities of ${liab} "
           f"thousand. During the month it repays a ${x} thousand short-term loan from its bank deposits."),
        _t(lang, "月末该企业的所有者权益总额为（ ）万元。", "Owners' equity at the end of the month is ____ thousand dollars."),
        _t(lang, "月末该企业的所有者权益总额为{value}万元。", "Owners' equity at the end of the month is {value} thousand dollars."),
        v, False, (a - liab - x, a - liab + x, a - x),
        (_t(lang, "所有者权益 = 资产 − 负债；以存款还借款使资产和负债同时减少，所有者权益不变。",
            "Equity = assets − liabilities; repaying a loan from deposits lowers assets and liabilities equally, "
            "so equity does not change."),
         f"({a} − {x}) − ({liab} − {x}) = {a} − {liab} = {_f2(v)}" + _t(lang, "（万元）。", ".")),
    )


def _calc_current_yield(rng: random.Random, lang: str) -> Calc:
    c = rng.randrange(200, 701, 25) / 100
    price = rng.choice([x / 2 for x in range(176, 225) if x != 200])
    v = c * 100 / price
    return Calc(
        "证券从业资格",
        _t(lang, f"某债券面值为100元，票面利率为{_num(c)}%，每年付息一次，当前市场价格为{_num(price)}元。",
           f"A bond with a face value of $100 pays an annual coupon of {_num(c)}% and trades at ${_num(price)}."),
        _t(lang, "该债券的当期收益率为（ ）。", "The bond's current yield is ____."),
        _t(lang, "该债券的当期收益率为{value}。", "The bond's current yield is {value}."),
        v, True, (c, (c + 100 - price) / price * 100, c * price / 100),
        (_t(lang, "当期收益率 = 年利息 ÷ 市场价格。", "Current yield = annual coupon ÷ market price."),
         f"100 × {_num(c)}% ÷ {_num(price)} = {_num(c)} ÷ {_num(price)} = {_f2(v)}%" + _t(lang, "。", ".")),
    )


def _calc_vat(rng: random.Random, lang: str) -> Calc:
    s = rng.randrange(100, 2001, 5)
    x = round(s * 0.13 * rng.uniform(0.2, 0.8), 2)
    v = s * 0.13 - x
    return Calc(
        "税务师",
        _t(lang, f"某增值税一般纳税人本月销售货物取得不含税销售额{s}万元，适用税率13%，本月取得合规的可抵扣进项税额{_num(x)}万元。",
           f"A general VAT taxpayer's sales this month are ${s} thousand excluding VAT, taxed at 13%, and its deductible "
           f"input VAT is ${_num(x)} thousand."),
        _t(lang, "该纳税人本月应缴纳增值税（ ）万元。", "VAT payable for the month is ____ thousand dollars."),
        _t(lang, "该纳税人本月应缴纳增值税{value}万元。", "VAT payable for the month is {value} thousand dollars."),
        v, False, (s * 0.13, s / 1.13 * 0.13 - x, s * 0.13 + x),
        (_t(lang, "应纳税额 = 销项税额 − 进项税额，销项税额 = 不含税销售额 × 税率。",
            "VAT payable = output VAT − input VAT, with output VAT = sales excluding VAT × rate."),
         f"{s} × 13% − {_num(x)} = {_f2(s * 0.13)} − {_num(x)} = {_f2(v)}" + _t(lang, "（万元）。", ".")),
    )


def _calc_bill_discount(rng: random.Random, lang: str) -> Calc:
    f, d, days = rng.randrange(100_000, 5_000_001, 10_000), rng.randrange(120, 401, 5) / 100, rng.randrange(30, 181, 5)
    v = f * d / 100 * days / 360
    return Calc(
        "银行从业资格",
        _t(lang, f"某企业持一张面额{f}元的银行承兑汇票到银行贴现，距到期日还有{days}天，年贴现率为{_num(d)}%（一年按360天计）。",
           f"A company discounts a ${f} banker's acceptance with {days} days to maturity at an annual discount rate of "
           f"{_num(d)}% (360-day year)."),
        _t(lang, "银行应扣除的贴现利息为（ ）元。", "The discount interest deducted by the bank is ____ dollars."),
        _t(lang, "银行应扣除的贴现利息为{value}元。", "The discount interest deducted by the bank is {value} dollars."),
        v, False, (f * d / 100 * days / 365, f * d / 100, f - v),
        (_t(lang, "贴现利息 = 票面金额 × 年贴现率 × 贴现天数 ÷ 360。",
            "Discount interest = face value × annual discount rate × days ÷ 360."),
         f"{f} × {_num(d)}% × {days} ÷ 360 = {_f2(v)}" + _t(lang, "（元）。", ".")),
    )


CALCS: dict[str, Callable[[random.Random, str], Calc]] = {
    "simple_interest": _calc_simple_interest,
    "real_rate": _calc_real_rate,
    "deposit_creation": _calc_deposit_creation,
    "quick_ratio": _calc_quick_ratio,
    "equity_after": _calc_equity_after,
    "current_yield": _calc_current_yield,
    "vat": _calc_vat,
    "bill_discount": _calc_bill_discount,
}


# --- CFLUE record assembly ---------------------------------------------------------------------
def _cflue_record(exam: str, qtype: str, question: str, options: list[str], correct: set[int], analysis: str) -> Record:
    """The CFLUE record; `options` already in display order, `correct` their indices."""
    choices = {LETTERS[k]: text for k, text in enumerate(options)}
    answer = "".join(LETTERS[k] for k in sorted(correct))
    return {"名称": exam, "task": qtype, "question": question, "choices": repr(choices), "answer": answer,
            "analysis": analysis}


def _conclude(lang: str, answer: str) -> str:
    return _t(lang, f"因此，本题答案为{answer}。", f"Therefore the answer is {answer}.")


def _quote(lang: str, text: str) -> str:
    return _t(lang, f"“{text}”", f'"{text}"')


def _join(lang: str, *parts: str) -> str:
    """Sentences run together in Chinese, space-separated in English."""
    return _t(lang, "", " ").join(p.strip() for p in parts if p.strip())


def _pick_taxonomy(rng: random.Random, min_members: int = 1) -> tuple[Taxonomy, int]:
    """A taxonomy and the index of one of its groups with at least `min_members` members."""
    tax = TAXONOMIES[rng.choice(sorted(TAXONOMIES))]
    fits = [g for g, group in enumerate(tax.groups) if len(group.members) >= min_members]
    return tax, rng.choice(fits)


def _member_lines(lang: str, tax: Taxonomy, options: list[tuple[int, int]]) -> str:
    """One clause per option: which group it belongs to."""
    parts = []
    for k, (g, m) in enumerate(options):
        group, text = tax.groups[g], tax.groups[g].members[m][0 if lang == "zh" else 1]
        parts.append(_t(lang, f"{LETTERS[k]}项{_quote(lang, text)}属于{group.zh}",
                        f"({LETTERS[k]}) {_quote(lang, text)} falls under {group.en}"))
    return _t(lang, "；".join(parts) + "。", "; ".join(parts) + ".")


def _group_intro(lang: str, group: Group) -> str:
    names = [m[0 if lang == "zh" else 1] for m in group.members]
    return _t(lang, f"{group.zh}包括{'、'.join(names)}等。", f"The category of {group.en} covers {', '.join(names)}.")


def _classify(rng: random.Random, lang: str, negate: bool = False, multi: bool = False) -> Record:
    """Options drawn from the groups of one taxonomy; the answer is membership (or its absence)."""
    tax, g = _pick_taxonomy(rng, min_members=3 if (negate or multi) else 1)
    group, others = tax.groups[g], [(h, m) for h, grp in enumerate(tax.groups) if h != g for m in range(len(grp.members))]
    inside = [(g, m) for m in range(len(group.members))]
    if multi:
        n_opts = rng.choice((4, 5)) if len(others) >= 3 else 4
        n_in = rng.randint(2, min(len(inside), n_opts - 1))
        picked = rng.sample(inside, n_in) + rng.sample(others, n_opts - n_in)
    elif negate:
        picked = rng.sample(inside, 3) + [rng.choice(others)]
    else:
        picked = [rng.choice(inside)] + rng.sample(others, 3)
    rng.shuffle(picked)
    want_inside = not negate
    correct = {k for k, (h, _) in enumerate(picked) if (h == g) == want_inside}
    options = [tax.groups[h].members[m][0 if lang == "zh" else 1] for h, m in picked]
    noun_zh, noun_en = tax.noun_zh, tax.noun_en
    if multi:
        qtype = MULTI
        q = _t(lang, f"下列{noun_zh}中，属于{group.zh}的有（ ）。",
               f"Which of the following {noun_en} belong to {group.en}? (Select all that apply.)")
    else:
        qtype = SINGLE
        q = _t(lang, f"下列{noun_zh}中，{'不' if negate else ''}属于{group.zh}的是（ ）。",
               f"Which of the following {noun_en} {'does NOT belong' if negate else 'belongs'} to {group.en}?")
    answer = "".join(LETTERS[k] for k in sorted(correct))
    analysis = _join(lang, _group_intro(lang, group), _member_lines(lang, tax, picked), _conclude(lang, answer))
    return _cflue_record(tax.exam, qtype, q, options, correct, analysis)


def _classify_tf(rng: random.Random, lang: str) -> Record:
    tax, g = _pick_taxonomy(rng)
    group = tax.groups[g]
    true = rng.random() < 0.5
    if true:
        h, m = g, rng.randrange(len(group.members))
    else:
        h = rng.choice([x for x in range(len(tax.groups)) if x != g])
        m = rng.randrange(len(tax.groups[h].members))
    text = tax.groups[h].members[m][0 if lang == "zh" else 1]
    q = _t(lang, f"{text}属于{group.zh}。（ ）", f"The category of {group.en} includes {text}. (True or False?)")
    fact = _t(lang, f"{_quote(lang, text)}属于{tax.groups[h].zh}",
              f"The category of {tax.groups[h].en} includes {_quote(lang, text)}")
    verdict = _t(lang, f"，题目说法{'正确' if true else '错误'}。", f", so the statement is {'true' if true else 'false'}.")
    answer = "A" if true else "B"
    analysis = _join(lang, _group_intro(lang, group), fact + verdict, _conclude(lang, answer))
    return _cflue_record(tax.exam, TF, q, list(TF_CHOICES[lang].values()), {0 if true else 1}, analysis)


def _statement_lines(lang: str, facts: list[Fact], truths: list[bool]) -> str:
    parts = [_t(lang, f"{LETTERS[k]}项{'正确' if ok else '错误'}：{f.why(lang)}",
                f"({LETTERS[k]}) is {'correct' if ok else 'incorrect'}: {f.why(lang)}")
             for k, (f, ok) in enumerate(zip(facts, truths))]
    return "\n".join(parts)


def _statements(rng: random.Random, lang: str, multi: bool = False) -> Record:
    """Options are statements of one topic, each in its true or its false wording."""
    topic = TOPICS[rng.choice(sorted(TOPICS))]
    if multi:
        n_opts = rng.choice((4, 5))
        n_true = rng.randint(2, n_opts - 1)
        truths = [True] * n_true + [False] * (n_opts - n_true)
        want = True
    else:
        n_opts, want = 4, rng.random() < 0.5  # want: ask for the correct one or the incorrect one
        truths = [want] + [not want] * 3
    facts = rng.sample(topic.facts, n_opts)
    order = list(range(n_opts))
    rng.shuffle(order)
    facts, truths = [facts[k] for k in order], [truths[k] for k in order]
    options = [f.text(lang, ok) for f, ok in zip(facts, truths)]
    correct = {k for k, ok in enumerate(truths) if ok == want}
    if multi:
        qtype = MULTI
        q = _t(lang, f"关于{topic.zh}，下列说法中正确的有（ ）。",
               f"Regarding {topic.en}, which of the following statements are correct? (Select all that apply.)")
    else:
        qtype = SINGLE
        q = _t(lang, f"关于{topic.zh}，下列说法{'正确' if want else '错误'}的是（ ）。",
               f"Regarding {topic.en}, which of the following statements is {'correct' if want else 'INCORRECT'}?")
    answer = "".join(LETTERS[k] for k in sorted(correct))
    analysis = _statement_lines(lang, facts, truths) + "\n" + _conclude(lang, answer)
    return _cflue_record(topic.exam, qtype, q, options, correct, analysis)


def _statement_tf(rng: random.Random, lang: str) -> Record:
    topic = TOPICS[rng.choice(sorted(TOPICS))]
    fact, true = rng.choice(topic.facts), rng.random() < 0.5
    q = fact.text(lang, true) + _t(lang, "（ ）", " (True or False?)")
    verdict = _t(lang, f"该说法{'正确' if true else '错误'}。", f"The statement is {'true' if true else 'false'}. ")
    answer = "A" if true else "B"
    analysis = _join(lang, verdict, fact.why(lang), _conclude(lang, answer))
    return _cflue_record(topic.exam, TF, q, list(TF_CHOICES[lang].values()), {0 if true else 1}, analysis)


def _value_text(x: float, percent: bool) -> str:
    return _f2(x) + ("%" if percent else "")


def _distinct_values(calc: Calc, k: int) -> list[str]:
    """The answer and k - 1 distinct distractors (mistakes first, then ±10%, ±20%... of the answer)."""
    out = [_value_text(calc.value, calc.percent)]
    bumps = [calc.value * (1 + s * j / 10) for j in range(1, 10) for s in (1, -1)]
    for x in list(calc.mistakes) + bumps:
        text = _value_text(x, calc.percent)
        if text not in out:
            out.append(text)
        if len(out) == k:
            break
    return out


def _calc_mcq(rng: random.Random, lang: str) -> Record:
    calc = CALCS[rng.choice(sorted(CALCS))](rng, lang)
    values = _distinct_values(calc, 4)
    order = list(range(4))
    rng.shuffle(order)
    options = [values[k] for k in order]
    correct = {order.index(0)}
    answer = LETTERS[order.index(0)]
    analysis = _join(lang, *calc.steps, _conclude(lang, answer))
    return _cflue_record(calc.exam, SINGLE, _join(lang, calc.context, calc.ask), options, correct, analysis)


def _calc_tf(rng: random.Random, lang: str) -> Record:
    calc = CALCS[rng.choice(sorted(CALCS))](rng, lang)
    values = _distinct_values(calc, 2)
    true = rng.random() < 0.5
    shown = values[0] if true else values[1]
    claim = calc.claim.format(value=shown)
    q = _join(lang, calc.context, claim + _t(lang, "（ ）", " (True or False?)"))
    verdict = _t(lang, f"正确结果为{values[0]}，题目说法{'正确' if true else '错误'}。",
                 f"The correct result is {values[0]}, so the statement is {'true' if true else 'false'}.")
    answer = "A" if true else "B"
    analysis = _join(lang, *calc.steps, verdict, _conclude(lang, answer))
    return _cflue_record(calc.exam, TF, q, list(TF_CHOICES[lang].values()), {0 if true else 1}, analysis)


# kind -> fn(rng, lang) -> CFLUE record
CFLUE_KINDS: dict[str, Callable[[random.Random, str], Record]] = {
    "classify": _classify,
    "classify_not": lambda rng, lang: _classify(rng, lang, negate=True),
    "classify_multi": lambda rng, lang: _classify(rng, lang, multi=True),
    "classify_tf": _classify_tf,
    "statement": _statements,
    "statement_multi": lambda rng, lang: _statements(rng, lang, multi=True),
    "statement_tf": _statement_tf,
    "calc": _calc_mcq,
    "calc_tf": _calc_tf,
}


def cflue_style(n: int, seed: int) -> list[Record]:
    """`n` CFLUE knowledge.json records; kinds cycle, one block of len(CFLUE_KINDS) in four is English."""
    _check_n(n, "cflue_style")
    kinds = list(CFLUE_KINDS)
    out = []
    for i in range(n):
        kind, lang = kinds[i % len(kinds)], LANG_CYCLE[(i // len(kinds)) % len(LANG_CYCLE)]
        out.append(CFLUE_KINDS[kind](random.Random(f"cflue:{seed}:{i}"), lang))
    return out


# =================================================================================================
# FinQA style
# =================================================================================================
COMPANIES: tuple[tuple[str, str, str], ...] = (  # (name, ticker, industry)
    ("alder industrial group", "ALDR", "diversified industrial"),
    ("bluewater logistics", "BWL", "freight and logistics"),
    ("cedar point energy", "CPE", "energy"),
    ("dunmore foods", "DNF", "packaged food"),
    ("everline systems", "EVL", "enterprise software"),
    ("fairhaven pharmaceuticals", "FHP", "pharmaceutical"),
    ("granite peak materials", "GPM", "building materials"),
    ("harborview retail", "HBR", "retail"),
    ("ironwood semiconductors", "IWS", "semiconductor"),
    ("juniper health services", "JHS", "healthcare services"),
    ("kestrel aerospace", "KAE", "aerospace"),
    ("lakeshore utilities", "LKU", "regulated utility"),
)
SEGMENTS = ("north america", "europe", "asia pacific", "latin america", "middle east and africa")
_SALES_REASONS = (("higher volumes", "pricing actions", "the contribution of acquisitions", "strong demand"),
                  ("lower volumes", "unfavorable foreign exchange", "the divestiture of a product line", "weaker demand"))
# table kind -> (the row post_text discusses, (reasons it rose, reasons it fell))
POST_TEXT: dict[str, tuple[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "income": ("net revenue", _SALES_REASONS),
    "segments": ("total net sales", _SALES_REASONS),
    "balance": ("total current assets", (("higher receivables from increased sales", "the build-up of inventories"),
                                         ("the use of cash for share repurchases", "lower inventory levels"))),
    "rollforward": ("balance at end of year", (("higher provisions for expected credit losses",),
                                               ("write-offs of uncollectible receivables", "improved collections"))),
}


@dataclass
class FinTable:
    """A generated table: rows in display order, values per column (newest year first)."""

    kind: str
    title: str
    corner: str  # the header's first cell
    years: list[str]
    rows: list[tuple[str, list[float]]]
    parts: list[tuple[list[str], str]]  # (part rows, whole row) pairs for share questions
    money_rows: frozenset[str]  # rows displayed with "$ "
    decimals: int

    def value(self, row: str, col: int) -> float:
        return dict(self.rows)[row][col]

    def index(self, row: str) -> int:
        """The row's index in the table (header = 0), for ann_table_rows / gold_inds."""
        return 1 + [name for name, _ in self.rows].index(row)

    def cell(self, row: str, x: float, original: bool = False) -> str:
        text = f"{x:,.{self.decimals}f}"
        if row in self.money_rows:
            return f"${text}" if original else f"$ {text}"
        return text

    def table(self, original: bool = False) -> list[list[str]]:
        header = [self.corner] + self.years
        return [header] + [[name] + [self.cell(name, x, original) for x in vals] for name, vals in self.rows]

    def linear(self, row: str) -> str:
        """FinQA's gold_inds sentence for a table row."""
        vals = dict(self.rows)[row]
        return " ".join(f"the {row} of {y} is {self.cell(row, x)} ;" for y, x in zip(self.years, vals))


def _years(rng: random.Random, k: int) -> list[str]:
    y0 = rng.randint(2012, 2023)
    return [str(y0 - j) for j in range(k)]


def _series(rng: random.Random, start: float, k: int, decimals: int, swing: float = 0.15) -> list[float]:
    """k values, oldest first, each within ±swing of the previous; returned newest first."""
    vals = [round(start, decimals)]
    for _ in range(k - 1):
        vals.append(round(vals[-1] * (1 + rng.uniform(-swing, swing)), decimals))
    return vals[::-1]


def _income_table(rng: random.Random, decimals: int) -> FinTable:
    years = _years(rng, 3)
    rev = _series(rng, rng.uniform(800, 20000), 3, decimals)
    cost_ratio, opex_ratio = rng.uniform(0.48, 0.7), rng.uniform(0.1, 0.18)
    cost = [round(r * (cost_ratio + rng.uniform(-0.03, 0.03)), decimals) for r in rev]
    gross = [round(r - c, decimals) for r, c in zip(rev, cost)]
    opex = [round(r * (opex_ratio + rng.uniform(-0.02, 0.02)), decimals) for r in rev]
    op = [round(g - o, decimals) for g, o in zip(gross, opex)]
    net = [round(o * rng.uniform(0.55, 0.8), decimals) for o in op]
    rows = [("net revenue", rev), ("cost of sales", cost), ("gross profit", gross), ("operating expenses", opex),
            ("operating income", op), ("net income", net)]
    parts = [(["cost of sales", "gross profit", "operating expenses", "operating income", "net income"], "net revenue")]
    return FinTable("income", "consolidated results of operations", "( in millions )", years, rows, parts,
                    frozenset({"net revenue", "net income"}), decimals)


def _segment_table(rng: random.Random, decimals: int) -> FinTable:
    years = _years(rng, 3)
    segs = rng.sample(SEGMENTS, rng.randint(3, 4))
    rows = [(s, _series(rng, rng.uniform(150, 6000), 3, decimals, 0.2)) for s in segs]
    total = [round(sum(v[j] for _, v in rows), decimals) for j in range(3)]
    rows.append(("total net sales", total))
    return FinTable("segments", "net sales by geographic region", "( in millions )", years, rows,
                    [(segs, "total net sales")], frozenset({segs[0], "total net sales"}), decimals)


def _balance_table(rng: random.Random, decimals: int) -> FinTable:
    years = _years(rng, 2)
    assets = [(name, _series(rng, rng.uniform(lo, hi), 2, decimals, 0.2)) for name, lo, hi in (
        ("cash and cash equivalents", 100, 3000), ("accounts receivable", 200, 4000), ("inventories", 150, 3500),
        ("other current assets", 50, 600))]
    liabs = [(name, _series(rng, rng.uniform(lo, hi), 2, decimals, 0.2)) for name, lo, hi in (
        ("accounts payable", 150, 2500), ("accrued liabilities", 80, 1200), ("short-term debt", 50, 1500))]
    tca = [round(sum(v[j] for _, v in assets), decimals) for j in range(2)]
    tcl = [round(sum(v[j] for _, v in liabs), decimals) for j in range(2)]
    rows = assets + [("total current assets", tca)] + liabs + [("total current liabilities", tcl)]
    parts = [([n for n, _ in assets], "total current assets"), ([n for n, _ in liabs], "total current liabilities")]
    money = frozenset({"cash and cash equivalents", "total current assets", "accounts payable", "total current liabilities"})
    return FinTable("balance", "selected balance sheet data", "december 31", years, rows, parts, money, decimals)


def _rollforward_table(rng: random.Random, decimals: int) -> FinTable:
    years = _years(rng, 3)
    begin = round(rng.uniform(100, 3000), decimals)
    cols = []  # oldest first: (begin, additions, reductions, end)
    for _ in range(3):
        add = round(begin * rng.uniform(0.05, 0.4), decimals)
        red = round(begin * rng.uniform(0.05, 0.35), decimals)
        end = round(begin + add - red, decimals)
        cols.append((begin, add, red, end))
        begin = end
    cols.reverse()
    names = ("balance at beginning of year", "additions", "reductions", "balance at end of year")
    rows = [(name, [c[r] for c in cols]) for r, name in enumerate(names)]
    return FinTable("rollforward", "changes in the allowance for doubtful accounts", "( in millions )", years, rows, [],
                    frozenset({names[0], names[3]}), decimals)


TABLES: dict[str, Callable[[random.Random, int], FinTable]] = {
    "income": _income_table,
    "segments": _segment_table,
    "balance": _balance_table,
    "rollforward": _rollforward_table,
}


@dataclass
class TextFacts:
    """Numbers stated in pre_text (not in the table), for the text questions."""

    year: str
    shares: float  # millions of shares repurchased
    price: float  # average price per share
    dividend: float  # quarterly dividend per share
    sentences: list[str]
    repurchase_index: int
    dividend_index: int


@dataclass(frozen=True)
class Question:
    question: str
    program: str
    kind: str  # "pct", "num" or "yesno": how the human answer is written
    rows: tuple[str, ...] = ()  # table rows used
    texts: tuple[int, ...] = ()  # pre_text sentences used


def _two_years(rng: random.Random, t: FinTable) -> tuple[int, int]:
    """Column indices (newer, older) of two years."""
    a, b = sorted(rng.sample(range(len(t.years)), 2))
    return a, b


def _q_pct_change(rng: random.Random, t: FinTable, f: TextFacts) -> Question:
    row, (a, b) = rng.choice(t.rows)[0], _two_years(rng, t)
    new, old = _num(t.value(row, a)), _num(t.value(row, b))
    return Question(f"what was the percentage change in {row} from {t.years[b]} to {t.years[a]}?",
                    f"subtract({new}, {old}), divide(#0, {old})", "pct", (row,))


def _q_difference(rng: random.Random, t: FinTable, f: TextFacts) -> Question:
    row, (a, b) = rng.choice(t.rows)[0], _two_years(rng, t)
    return Question(f"what was the change in {row} between {t.years[b]} and {t.years[a]} , in millions?",
                    f"subtract({_num(t.value(row, a))}, {_num(t.value(row, b))})", "num", (row,))


def _q_ratio(rng: random.Random, t: FinTable, f: TextFacts) -> Question:
    (r1, _), (r2, _) = rng.sample(t.rows, 2)
    c = rng.randrange(len(t.years))
    return Question(f"what was the ratio of {r1} to {r2} in {t.years[c]}?",
                    f"divide({_num(t.value(r1, c))}, {_num(t.value(r2, c))})", "num", (r1, r2))


def _q_share(rng: random.Random, t: FinTable, f: TextFacts) -> Question:
    parts, whole = rng.choice(t.parts)
    part, c = rng.choice(parts), rng.randrange(len(t.years))
    return Question(f"what percentage of {whole} in {t.years[c]} was {part}?",
                    f"divide({_num(t.value(part, c))}, {_num(t.value(whole, c))})", "pct", (part, whole))


def _q_share_change(rng: random.Random, t: FinTable, f: TextFacts) -> Question:
    parts, whole = rng.choice(t.parts)
    part, (a, b) = rng.choice(parts), _two_years(rng, t)
    v = {k: (_num(t.value(part, k)), _num(t.value(whole, k))) for k in (a, b)}
    return Question(f"what was the change in {part} as a percentage of {whole} from {t.years[b]} to {t.years[a]}?",
                    f"divide({v[a][0]}, {v[a][1]}), divide({v[b][0]}, {v[b][1]}), subtract(#0, #1)", "pct", (part, whole))


def _q_sum(rng: random.Random, t: FinTable, f: TextFacts) -> Question:
    row = rng.choice(t.rows)[0]
    return Question(f"what was the total {row} for {' , '.join(t.years[::-1])} combined , in millions?",
                    f"table_sum({row}, none)", "num", (row,))


def _q_average(rng: random.Random, t: FinTable, f: TextFacts) -> Question:
    row = rng.choice(t.rows)[0]
    return Question(f"what was the average {row} from {t.years[-1]} to {t.years[0]} , in millions?",
                    f"table_average({row}, none)", "num", (row,))


def _q_greater_years(rng: random.Random, t: FinTable, f: TextFacts) -> Question:
    row, (a, b) = rng.choice(t.rows)[0], _two_years(rng, t)
    return Question(f"was {row} in {t.years[a]} greater than in {t.years[b]}?",
                    f"greater({_num(t.value(row, a))}, {_num(t.value(row, b))})", "yesno", (row,))


def _q_greater_rows(rng: random.Random, t: FinTable, f: TextFacts) -> Question:
    (r1, _), (r2, _) = rng.sample(t.rows, 2)
    c = rng.randrange(len(t.years))
    return Question(f"in {t.years[c]} , was {r1} greater than {r2}?",
                    f"greater({_num(t.value(r1, c))}, {_num(t.value(r2, c))})", "yesno", (r1, r2))


def _q_margin(rng: random.Random, t: FinTable, f: TextFacts) -> Question:
    c = rng.randrange(len(t.years))
    rev, y = _num(t.value("net revenue", c)), t.years[c]
    if rng.random() < 0.5:
        return Question(f"what was the gross margin in {y}?",
                        f"subtract({rev}, {_num(t.value('cost of sales', c))}), divide(#0, {rev})", "pct",
                        ("net revenue", "cost of sales"))
    return Question(f"what was the operating margin in {y}?", f"divide({_num(t.value('operating income', c))}, {rev})",
                    "pct", ("operating income", "net revenue"))


def _q_liquidity(rng: random.Random, t: FinTable, f: TextFacts) -> Question:
    c = rng.randrange(len(t.years))
    tca, tcl = _num(t.value("total current assets", c)), _num(t.value("total current liabilities", c))
    rows = ("total current assets", "total current liabilities")
    if rng.random() < 0.5:
        return Question(f"what was the working capital at december 31 , {t.years[c]} , in millions?",
                        f"subtract({tca}, {tcl})", "num", rows)
    return Question(f"what was the current ratio at december 31 , {t.years[c]}?", f"divide({tca}, {tcl})", "num", rows)


def _q_repurchase(rng: random.Random, t: FinTable, f: TextFacts) -> Question:
    return Question(f"what was the total cost of the shares repurchased in {f.year} , in millions?",
                    f"multiply({_num(f.shares)}, {_num(f.price)})", "num", texts=(f.repurchase_index,))


def _q_dividend(rng: random.Random, t: FinTable, f: TextFacts) -> Question:
    return Question(f"what was the total annual dividend per share declared in {f.year}?",
                    f"multiply({_num(f.dividend)}, const_4)", "num", texts=(f.dividend_index,))


@dataclass(frozen=True)
class FinTemplate:
    fn: Callable[[random.Random, FinTable, TextFacts], Question]
    tables: tuple[str, ...]  # table kinds it applies to


ALL_TABLES = tuple(TABLES)
FINQA_TEMPLATES: dict[str, FinTemplate] = {
    "pct_change": FinTemplate(_q_pct_change, ALL_TABLES),
    "difference": FinTemplate(_q_difference, ALL_TABLES),
    "ratio": FinTemplate(_q_ratio, ALL_TABLES),
    "share": FinTemplate(_q_share, ("income", "segments", "balance")),
    "share_change": FinTemplate(_q_share_change, ("income", "segments", "balance")),
    "table_sum": FinTemplate(_q_sum, ALL_TABLES),
    "table_average": FinTemplate(_q_average, ALL_TABLES),
    "greater_years": FinTemplate(_q_greater_years, ALL_TABLES),
    "greater_rows": FinTemplate(_q_greater_rows, ALL_TABLES),
    "margin": FinTemplate(_q_margin, ("income",)),
    "liquidity": FinTemplate(_q_liquidity, ("balance",)),
    "repurchase": FinTemplate(_q_repurchase, ALL_TABLES),
    "dividend": FinTemplate(_q_dividend, ALL_TABLES),
}


def _text_facts(rng: random.Random, company: tuple[str, str, str], t: FinTable) -> TextFacts:
    name, _, industry = company
    year = t.years[0]
    shares, price, div = round(rng.uniform(0.5, 12), 1), round(rng.uniform(12, 180), 2), round(rng.uniform(0.1, 1.5), 2)
    sentences = [
        f"{name} is {'an' if industry[0] in 'aeiou' else 'a'} {industry} company . the following discussion should be "
        f"read together with the consolidated financial statements .",
        f"during {year} , we repurchased {_num(shares)} million shares of our common stock at an average price of "
        f"$ {price:.2f} per share .",
        f"in {year} , our board of directors declared a quarterly cash dividend of $ {div:.2f} per share .",
        f"the following table presents the {t.title} for the years indicated :",
    ]
    return TextFacts(year, shares, price, div, sentences, 1, 2)


def _post_text(rng: random.Random, t: FinTable) -> list[str]:
    row, (ups, downs) = POST_TEXT[t.kind]
    up = t.value(row, 0) >= t.value(row, 1)
    return [f"{row} {'increased' if up else 'decreased'} in {t.years[0]} compared with {t.years[1]} primarily due to "
            f"{rng.choice(ups if up else downs)} .", "amounts may not add due to rounding ."]


def human_answer(value: float | str, kind: str) -> str:
    """exe_ans as a person writes it: "yes", "12.3%", "1,234.5": the fewest decimals within 0.05%."""
    if isinstance(value, str):
        return value
    x = value * 100 if kind == "pct" else value
    for places in range(0 if kind == "num" else 1, 7):
        shown = round_half_up(x, places)
        if abs(shown - x) <= 5e-4 * abs(x):
            break
    text = f"{shown:,.{places}f}" if kind == "num" else f"{shown:.{places}f}"
    return text + ("%" if kind == "pct" else "")


def _program_re(program: str) -> str:
    """FinQA's nested form: each `#k` replaced by step k's expression."""
    exprs: list[str] = []
    for step in program.split("), "):
        step = step if step.endswith(")") else step + ")"
        for k in range(len(exprs) - 1, -1, -1):
            step = step.replace(f"#{k}", exprs[k])
        exprs.append(step)
    return exprs[-1]


def _finqa_record(i: int, seed: int, template: str, rng: random.Random) -> Record:
    tpl = FINQA_TEMPLATES[template]
    decimals = 1 if rng.random() < 0.3 else 0
    t = TABLES[rng.choice(tpl.tables)](rng, decimals)
    company = rng.choice(COMPANIES)
    facts = _text_facts(rng, company, t)
    q = tpl.fn(rng, t, facts)
    table = t.table()
    exe_ans = execute(q.program, table)
    gold_inds = {f"table_{t.index(r)}": t.linear(r) for r in dict.fromkeys(q.rows)}
    gold_inds.update({f"text_{k}": facts.sentences[k] for k in q.texts})
    filename = f"{company[1]}/{t.years[0]}/page_{i + 1}.pdf"
    return {
        "id": f"{filename}-{seed}",
        "filename": filename,
        "pre_text": facts.sentences,
        "post_text": _post_text(rng, t),
        "table_ori": t.table(original=True),
        "table": table,
        "qa": {
            "question": q.question,
            "answer": human_answer(exe_ans, q.kind),
            "explanation": "",
            "ann_table_rows": sorted({t.index(r) for r in q.rows}),
            "ann_text_rows": list(q.texts),
            "program": q.program,
            "program_re": _program_re(q.program),
            "gold_inds": gold_inds,
            "exe_ans": exe_ans,
        },
    }


def finqa_style(n: int, seed: int) -> list[Record]:
    """`n` FinQA records (English); question templates cycle, tables and numbers come from the seed."""
    _check_n(n, "finqa_style")
    names = list(FINQA_TEMPLATES)
    return [_finqa_record(i, seed, names[i % len(names)], random.Random(f"finqa:{seed}:{i}")) for i in range(n)]


# =================================================================================================
# CCC style
# =================================================================================================
BANKS = ("恒信银行", "华安银行", "宏远银行", "瑞丰银行", "安泰消费金融", "嘉禾银行")
GREETINGS = ("您好，这里是{bank}客服中心，请问有什么可以帮您？", "您好，{bank}客服很高兴为您服务，请问您遇到了什么问题？",
             "您好，欢迎致电{bank}，我是客服专员，请讲。")
ISSUES = (
    "我的信用卡这个月被多扣了{amt}元年费，我从来没同意过开通这个服务。",
    "我买的理财产品{days}天前就到期了，{wan}万元本金到现在还没到账。",
    "我上周提前还了一部分房贷，你们又扣了我{amt}元违约金，办理时根本没人告诉我。",
    "我的借记卡昨天莫名其妙被扣了{amt}元，连短信通知都没收到。",
    "我申请的基金赎回款{amt}元过了{days}天还没到账。",
    "我的贷款每期都按时还了，征信报告上却显示有一次逾期。",
    "我在你们APP上转账{amt}元，一直显示处理中，对方也没收到。",
)
FIRST_REPLIES = ("非常抱歉给您带来不便，我这边帮您查询一下。系统显示该笔业务目前正在处理中。",
                 "您先别着急，我查询到这笔业务还在核实流程中，暂时没有处理结果。",
                 "抱歉让您久等了，系统显示相关部门正在核查，暂时还没有结论。")
# (customer, agent) closing turns of a compliant dialogue: after a complaint, after an enquiry
CLOSINGS_COMPLAINT = (("好吧，那我等你们的电话。", "感谢您的理解，有进展我们会第一时间通知您，祝您生活愉快。"),
                      ("行，希望这次能尽快解决。", "一定会的，再次向您致歉，感谢您的耐心。"),
                      ("好的，谢谢。", "不客气，请保持电话畅通，再见。"))
CLOSINGS_ENQUIRY = (("好的，我明白了，谢谢。", "不客气，感谢您的来电，祝您生活愉快。"),
                    ("知道了，那我自己再看看。", "好的，如有其他问题欢迎随时联系我们。"),
                    ("行，谢谢你。", "不客气，再见。"))
CLOSINGS_BAD = ("你们这是什么服务态度！", "算了，跟你说不清楚。", "那我只能自己想办法了。")
REGULATORS = ("国家金融监督管理总局", "中国人民银行", "12378银行保险消费者投诉热线", "当地金融监管局")
PLATFORMS = ("微博", "抖音", "小红书", "黑猫投诉", "本地新闻媒体")
LEGAL_ACTIONS = ("去法院起诉你们", "请律师给你们发律师函", "直接报警", "申请仲裁")
PRODUCTS = ("稳盈理财{k}号", "鑫享混合型基金", "安泰增利理财{k}期", "瑞丰成长股票基金")


@dataclass(frozen=True)
class Reply:
    """The agent's key reply and the per-rule outcome it causes: rule id -> (triggered, note)."""

    text: str
    findings: tuple[tuple[str, bool, str], ...]


@dataclass(frozen=True)
class Scenario:
    """A dialogue situation aimed at one rule: how it opens, the customer's trigger, the replies."""

    opener: Callable[[random.Random, dict[str, Any]], list[tuple[str, str]]]  # turns before the key reply
    compliant: tuple[Reply, ...]
    violation: tuple[Reply, ...]
    closings: tuple[tuple[str, str], ...] = CLOSINGS_COMPLAINT  # for compliant dialogues


def _complaint_opener(trigger: str) -> Callable[[random.Random, dict[str, Any]], list[tuple[str, str]]]:
    """Customer states an issue, the agent stalls, the customer says `trigger` (a template)."""

    def opener(rng: random.Random, v: dict[str, Any]) -> list[tuple[str, str]]:
        return [("客户", rng.choice(ISSUES).format(**v)), ("客服", rng.choice(FIRST_REPLIES)),
                ("客户", trigger.format(**v))]

    return opener


def _sales_opener(rng: random.Random, v: dict[str, Any]) -> list[tuple[str, str]]:
    return [("客户", f"我手上有{v['wan']}万元闲钱，想买你们的{v['product']}，这个产品安全吗？收益能有多少？")]


def _login_opener(rng: random.Random, v: dict[str, Any]) -> list[tuple[str, str]]:
    ask = rng.choice(("我的手机银行突然登录不上了，提示密码错误，怎么办？",
                      "我想查一下尾号{tail}的卡最近有没有异常交易，但是APP一直登录失败。",
                      "我尾号{tail}的银行卡好像被锁了，转不了账，能帮我处理一下吗？"))
    return [("客户", ask.format(**v))]


def _relative_opener(rng: random.Random, v: dict[str, Any]) -> list[tuple[str, str]]:
    who = rng.choice(("我爱人", "我父亲", "我母亲", "我儿子", "我朋友"))
    what = rng.choice(("办了哪些业务，有没有贷款", "名下有几张卡，余额多少", "最近有没有大额转账"))
    return [("客户", f"我想问一下{who}在你们这里{what}？")]


def _repeat_opener(rng: random.Random, v: dict[str, Any]) -> list[tuple[str, str]]:
    return [("客户", rng.choice(ISSUES).format(**v)),
            ("客服", f"该笔业务需要经过清算核对流程，一般会在{v['n']}个工作日内处理完毕。"),
            ("客户", rng.choice(("你刚才说的我没太听明白，能不能再解释一遍？", "什么叫清算核对流程？我听不懂，你再说说。")))]


_ESCALATED = "已升级工单并告知{n}个工作日内处理"
_NOT_ESCALATED = "未创建或升级工单"

CCC_SCENARIOS: dict[str, Scenario] = {
    "regulator_complaint": Scenario(
        _complaint_opener("都{days}天了还没解决，再不处理我就去{regulator}投诉你们！"),
        (Reply("非常理解您的心情，给您添麻烦了。我已经把您的诉求完整记录，并升级为加急投诉工单（工单号{ticket}），"
               "专员会在{n}个工作日内联系您处理。",
               (("regulator_complaint", False, "客户表示要向监管投诉，客服安抚客户、记录诉求并升级工单"),
                ("ticket_escalation", False, _ESCALATED))),
         Reply("真的很抱歉让您等了这么久。您反映的问题我已经登记，工单号{ticket}，已转交投诉处理专员跟进，"
               "{n}个工作日内一定给您答复，您也有权向监管反映。",
               (("regulator_complaint", False, "客服致歉并记录诉求，未劝阻客户投诉"),
                ("ticket_escalation", False, _ESCALATED)))),
        (Reply("您投诉也没用，监管那边最后还是会转回我们处理，您还是等着吧。",
               (("regulator_complaint", True, "客户扬言向监管投诉，客服劝阻投诉且未安抚"),
                ("ticket_escalation", True, _NOT_ESCALATED))),
         Reply("您要是去投诉的话，以后在我们这里办业务可能就没那么方便了。",
               (("regulator_complaint", True, "客服以业务受影响威胁客户不要投诉"),
                ("service_conduct", True, "客服威胁客户"),
                ("ticket_escalation", True, _NOT_ESCALATED))),
         Reply("这个我也没办法，系统就是这么处理的，您想去哪投诉就去哪投诉吧。",
               (("regulator_complaint", True, "客服对客户的监管投诉诉求置之不理"),
                ("service_conduct", True, "客服推诿敷衍"),
                ("ticket_escalation", True, _NOT_ESCALATED)))),
    ),
    "social_media_complaint": Scenario(
        _complaint_opener("你们再不解决，我就把这件事发到{platform}上，让大家都看看！"),
        (Reply("非常抱歉让您有这样的体验。您的诉求我已经详细记录，并提交为加急工单（编号{ticket}），"
               "{n}个工作日内会有专人给您回复，也请您给我们一个处理的机会。",
               (("social_media_complaint", False, "客户表示要在网上曝光，客服安抚并升级工单"),
                ("ticket_escalation", False, _ESCALATED))),
         Reply("您的心情我完全理解，这件事确实是我们处理得不够及时。我已为您升级处理，工单号{ticket}，"
               "主管会在{n}个工作日内直接联系您。",
               (("social_media_complaint", False, "客服安抚客户并升级至主管处理"),
                ("ticket_escalation", False, _ESCALATED)))),
        (Reply("您随便发，发了也没人看。",
               (("social_media_complaint", True, "客服嘲讽客户的曝光诉求"),
                ("service_conduct", True, "客服嘲讽客户"),
                ("ticket_escalation", True, _NOT_ESCALATED))),
         Reply("您发到网上对您也没好处，我们有权追究您的法律责任。",
               (("social_media_complaint", True, "客服威胁要追究客户的法律责任"),
                ("service_conduct", True, "客服威胁客户"),
                ("ticket_escalation", True, _NOT_ESCALATED))),
         Reply("好的，还有其他问题吗？没有的话我先挂了。",
               (("social_media_complaint", True, "客服对客户的曝光诉求置之不理"),
                ("service_conduct", True, "客服敷衍并准备挂断"),
                ("ticket_escalation", True, _NOT_ESCALATED)))),
    ),
    "legal_risk": Scenario(
        _complaint_opener("这件事你们要是不给个说法，我就{legal}。"),
        (Reply("您的意见我们非常重视，已经为您详细记录并转交法务专员处理，工单号{ticket}，专员会在{n}个工作日内与您联系。"
               "您依法维权的权利我们尊重。",
               (("legal_risk", False, "客服记录客户的法律诉求并转交专人处理，未作承诺"),
                ("ticket_escalation", False, _ESCALATED))),
         Reply("理解您的不满。我已将您的诉求登记为重点工单（{ticket}），由专人在{n}个工作日内联系您，"
               "处理结果以专员的正式答复为准。",
               (("legal_risk", False, "客服登记并转交专人，未对法律后果作出陈述"),
                ("ticket_escalation", False, _ESCALATED)))),
        (Reply("您起诉也赢不了，合同里都写得清清楚楚，法院肯定判我们赢。",
               (("legal_risk", True, "客服对法律后果作出误导性陈述"),
                ("ticket_escalation", True, "未将法律风险诉求转交专人处理"))),
         Reply("您别折腾了，这种事报警也没人管，律师也帮不了您。",
               (("legal_risk", True, "客服劝阻客户依法维权并作误导性陈述"),
                ("ticket_escalation", True, _NOT_ESCALATED))),
         Reply("您放心，只要您不起诉，我保证下个月一定全额赔给您。",
               (("legal_risk", True, "客服为劝阻客户维权作出无依据的承诺"),
                ("ticket_escalation", True, "未登记工单、未转交专人")))),
    ),
    "ticket_escalation": Scenario(
        _complaint_opener("我要正式投诉这件事，你帮我转给你们主管处理。"),
        (Reply("好的，已为您登记投诉工单（工单号{ticket}），并升级至主管处理，{n}个工作日内会有专人联系您。",
               (("ticket_escalation", False, _ESCALATED),)),
         Reply("没问题，我这就为您提交投诉并转主管，工单号是{ticket}，处理时限为{n}个工作日，期间您可以随时凭工单号查询进度。",
               (("ticket_escalation", False, _ESCALATED),))),
        (Reply("我们这里没有主管，投诉也是我处理，您跟我说就行了。",
               (("ticket_escalation", True, "拒绝客户转主管的要求且未登记投诉"),)),
         Reply("这个问题登记不了投诉，您过几天再打过来问问吧。",
               (("ticket_escalation", True, "拒绝登记投诉并拖延处理"),)),
         Reply("投诉需要您本人到网点书面提交，电话里没法登记。",
               (("ticket_escalation", True, "推诿，未为客户登记投诉工单"),))),
    ),
    "service_conduct": Scenario(
        _repeat_opener,
        (Reply("没问题，我再为您详细说明一下：这笔款项需要先由系统核对账务，核对无误后才会入账，"
               "一般{n}个工作日内完成，到账后会有短信通知您。请问这样说清楚吗？",
               (("service_conduct", False, "客服耐心、礼貌地再次解释"),)),
         Reply("好的，是我刚才没说清楚，抱歉。简单来说就是银行需要核对这笔钱，{n}个工作日内会处理好，您不需要额外操作。",
               (("service_conduct", False, "客服致歉并耐心解释"),))),
        (Reply("我都说了好几遍了，您是听不懂中文吗？",
               (("service_conduct", True, "客服嘲讽客户、态度恶劣"),)),
         Reply("这么简单都不懂，您自己去看合同吧。",
               (("service_conduct", True, "客服嘲讽客户并推诿"),)),
         Reply("我这边还有别的客户要接待，先挂了。",
               (("service_conduct", True, "客服在客户仍有疑问时无故挂断"),))),
    ),
    "sales_promise": Scenario(
        _sales_opener,
        (Reply("这款产品风险等级为{risk}，不保本，业绩比较基准为{rate}%，但业绩比较基准不代表实际收益。"
               "购买前需要您先完成风险测评，确认与您的风险承受能力匹配。",
               (("sales_promise", False, "客服如实揭示风险，未承诺收益，并要求风险测评"),)),
         Reply("理财产品都有风险，这款产品过往业绩不代表未来表现，不能保证收益。建议您先做风险测评，"
               "我们会根据结果为您推荐合适的产品。",
               (("sales_promise", False, "客服提示风险，未作收益承诺"),))),
        (Reply("您放心，这款产品保本保收益，年化稳稳{rate}%，绝对不会亏。",
               (("sales_promise", True, "客服承诺保本保收益"),)),
         Reply("虽然产品风险等级是R4，您的测评结果偏保守也没关系，我帮您重新做一遍测评，选高一点就能买了。",
               (("sales_promise", True, "客服诱导客户购买与风险承受能力不匹配的产品"),)),
         Reply("这款产品去年收益有{high}%，今年肯定更高，现在不买就亏大了。",
               (("sales_promise", True, "客服夸大收益、以过往业绩暗示未来收益"),))),
        CLOSINGS_ENQUIRY,
    ),
    "information_security": Scenario(
        _login_opener,
        (Reply("为了保障您的账户安全，我们不会向您索要密码和短信验证码，请您不要透露给任何人。"
               "您可以在APP上通过人脸识别自助重置密码，或携带身份证到网点办理。",
               (("information_security", False, "客服提醒客户保护密码和验证码，未索要敏感信息"),)),
         Reply("请您通过APP的“忘记密码”功能，完成人脸识别后自助解锁。提醒您，任何自称客服索要验证码的都是诈骗。",
               (("information_security", False, "客服引导客户自助办理，未索要敏感信息"),))),
        (Reply("请您把登录密码和刚收到的短信验证码报给我，我帮您在后台处理。",
               (("information_security", True, "客服索要客户的密码和短信验证码"),)),
         Reply("您先把收到的验证码告诉我，我帮您核实一下身份。",
               (("information_security", True, "客服索要客户的短信验证码"),)),
         Reply("您把银行卡号和取款密码发给我，我这边直接帮您解锁。",
               (("information_security", True, "客服索要客户的银行卡密码"),))),
        CLOSINGS_ENQUIRY,
    ),
    "privacy": Scenario(
        _relative_opener,
        (Reply("涉及他人账户的信息需要本人授权才能查询，我们不能向您透露。请您让本人通过APP或到网点查询。",
               (("information_security", False, "客服拒绝透露他人的个人信息"),)),
         Reply("抱歉，根据个人信息保护的要求，我们只能向账户本人提供业务信息，请您理解。",
               (("information_security", False, "客服依规拒绝透露他人信息"),))),
        (Reply("我查了一下，他上个月在我们这里还申请了{wan}万元的贷款，这个您知道吗？",
               (("information_security", True, "客服泄露他人的贷款信息"),)),
         Reply("他名下有两张卡，其中一张的余额是{amt}元，最近还有几笔转账。",
               (("information_security", True, "客服泄露他人的账户余额和交易信息"),))),
        CLOSINGS_ENQUIRY,
    ),
}


def _ccc_values(rng: random.Random) -> dict[str, Any]:
    return {
        "bank": rng.choice(BANKS), "amt": rng.randrange(50, 5001, 10), "days": rng.randint(3, 30),
        "n": rng.randint(1, 5), "ticket": f"TS{rng.randrange(10**9, 10**10)}", "regulator": rng.choice(REGULATORS),
        "platform": rng.choice(PLATFORMS), "legal": rng.choice(LEGAL_ACTIONS), "wan": rng.randrange(5, 201, 5),
        "tail": f"{rng.randrange(10_000):04d}",
        "product": rng.choice(PRODUCTS).format(k=rng.randint(1, 30)), "risk": rng.choice(("R2", "R3", "R4")),
        "rate": f"{rng.randrange(250, 601, 5) / 100:.2f}", "high": f"{rng.randrange(800, 2001, 10) / 100:.1f}",
    }


def _ccc_record(i: int, seed: int, scenario: str, label: str, rng: random.Random) -> Record:
    sc = CCC_SCENARIOS[scenario]
    v = _ccc_values(rng)
    reply = rng.choice(sc.violation if label == VIOLATION else sc.compliant)
    turns = [("客服", rng.choice(GREETINGS).format(**v))] if rng.random() < 0.7 else []
    turns += sc.opener(rng, v) + [("客服", reply.text.format(**v))]
    if label == COMPLIANT:
        customer, agent = rng.choice(sc.closings)
        turns += [("客户", customer), ("客服", agent)]
    elif rng.random() < 0.6:
        turns.append(("客户", rng.choice(CLOSINGS_BAD)))
    findings = [{"rule_id": rule, "triggered": hit, "note": note.format(**v)} for rule, hit, note in reply.findings]
    return {"id": f"ccc-syn-{seed}-{i:04d}", "dialogue": [{"role": r, "text": t} for r, t in turns],
            "label": label, "findings": findings}


def ccc_style(n: int, seed: int) -> list[Record]:
    """`n` CCC dialogues: even i violation, odd i compliant; each scenario gets both labels in turn."""
    _check_n(n, "ccc_style")
    names = list(CCC_SCENARIOS)
    return [_ccc_record(i, seed, names[(i // 2) % len(names)], (VIOLATION, COMPLIANT)[i % 2],
                        random.Random(f"ccc:{seed}:{i}")) for i in range(n)]


def _check_scenarios() -> None:
    """A typo in a rule id must fail at import, not later in the CCC loader."""
    ids = {r["id"] for r in DEFAULT_RULES}
    for name, sc in CCC_SCENARIOS.items():
        for reply in sc.compliant + sc.violation:
            unknown = {f[0] for f in reply.findings} - ids
            if unknown:
                raise ValueError(f"CCC scenario {name!r}: unknown rule ids {sorted(unknown)}")


_check_scenarios()


# =================================================================================================
# writers
# =================================================================================================
def _write_json(records: list[Record], path: str | Path) -> Path:
    return atomic_write_text(path, json.dumps(records, ensure_ascii=False, indent=1) + "\n")


def write_cflue(records: list[Record], path: str | Path) -> Path:
    """A JSON array, like CFLUE's knowledge.json."""
    return _write_json(records, path)


def write_finqa(records: list[Record], path: str | Path) -> Path:
    """A JSON array, like FinQA's {train,dev,test}.json."""
    return _write_json(records, path)


def write_ccc(records: list[Record], path: str | Path) -> Path:
    """JSONL, one dialogue a line (docs/ccc_schema.md)."""
    return write_jsonl(path, records)


# task -> (file under out_dir, generator, writer); the file is what `resolve_data` picks for the task.
DEMO_FILES: dict[str, tuple[str, Callable[[int, int], list[Record]], Callable[[list[Record], str | Path], Path]]] = {
    "cflue": ("cflue/knowledge.json", cflue_style, write_cflue),
    "finqa": ("finqa/test.json", finqa_style, write_finqa),
    "ccc": ("ccc/ccc.jsonl", ccc_style, write_ccc),
}


def write_demo_sets(out_dir: str | Path, n_cflue: int = 200, n_finqa: int = 100, n_ccc: int = 100,
                    seed: int = 0) -> dict[str, Path]:
    """Write the three sets under `out_dir` in the layout of ../shared/data; task -> path.

    A count of 0 skips that task (no file written, no key returned).
    """
    counts = {"cflue": n_cflue, "finqa": n_finqa, "ccc": n_ccc}
    out: dict[str, Path] = {}
    for task, (rel, generate, write) in DEMO_FILES.items():
        _check_n(counts[task], f"write_demo_sets n_{task}")
        if counts[task]:
            out[task] = write(generate(counts[task], seed), Path(out_dir) / rel)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m dianjin.data.synthetic", description=__doc__.split("\n")[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--n-cflue", type=int, default=200)
    ap.add_argument("--n-finqa", type=int, default=100)
    ap.add_argument("--n-ccc", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    for task, path in write_demo_sets(args.out_dir, args.n_cflue, args.n_finqa, args.n_ccc, args.seed).items():
        print(f"{task}: {path}")


if __name__ == "__main__":
    main()
