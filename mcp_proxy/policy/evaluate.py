"""The decision rule (DESIGN, "Decision rule"), as one function that `decide` and `explain` share.

A tool is available when its state is approved (explicitly, or by
`auto_approve = "read_only"` for a read-only tool that is not disabled: a
built-in connector's read tool, or a tool whose readOnlyHint comes from an
upstream named in `defaults.trust_annotations`), its
current definition hash equals the pinned `sha256` (when there is one), and, if
the document defines profiles, a profile containing the user names a toolset
whose globs match the tool's key. Toolsets never approve by themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from mcp_proxy.policy.definition import ToolFacts
from mcp_proxy.policy.document import PolicyDocument, ToolEntry, format_time

CODES = ("ungoverned", "approved", "pending", "disabled", "not_in_profile", "definition_changed", "no_policy",
         "expired")
REQUEST_TOOL = "proxy_request_access"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    state: str  # the tool's effective state: approved | pending | disabled | unknown (no policy) | ungoverned
    code: str  # one of CODES
    message: str  # for the model: why, and how to ask for access


@dataclass(frozen=True)
class Step:
    rule: str
    passed: bool | None  # None: the rule does not apply
    detail: str


def _ask(facts: ToolFacts, admin_step: str) -> str:
    return (f" To ask for access, call {REQUEST_TOOL} with tool \"{facts.exposed_name}\" and the user's reason; "
            f"an administrator can then {admin_step} and publish a new policy revision.")


def user_profiles(doc: PolicyDocument, user: str | None) -> list[str]:
    """Names of the profiles whose members include `user` (by email or `group:NAME`)."""
    if not user:
        return []
    email = user.lower()
    names = []
    for profile in doc.profiles:
        for member in profile.members:
            if member.startswith("group:"):
                if email in doc.groups.get(member[6:], ()):
                    names.append(profile.name)
                    break
            elif member == email:
                names.append(profile.name)
                break
    return names


def matching_toolsets(doc: PolicyDocument, key: str) -> list[str]:
    return [name for name, globs in doc.toolsets.items() if any(fnmatchcase(key, g) for g in globs)]


def toolset_rank(doc: PolicyDocument | None, facts: ToolFacts, user: str | None) -> int:
    """Position of the first of the user's toolsets (profile order, then toolset order) matching the tool."""
    if doc is None:
        return 1 << 20
    mine = set(user_profiles(doc, user))
    rank = 0
    for profile in doc.profiles:
        if profile.name not in mine:
            continue
        for toolset in profile.toolsets:
            if any(fnmatchcase(facts.key, g) for g in doc.toolsets.get(toolset, ())):
                return rank
            rank += 1
    return 1 << 20


def _untrusted_claim(doc: PolicyDocument, facts: ToolFacts) -> str | None:
    """Why the tool's read-only flag is not evidence for auto-approval, or None when it is: a built-in
    connector's flag is the proxy's own code; an MCP upstream's is its claim about itself, which counts only
    for upstreams the document names in defaults.trust_annotations."""
    if facts.builtin or facts.upstream in doc.trust_annotations:
        return None
    return (f"its upstream '{facts.upstream}' is not in defaults.trust_annotations, so its readOnlyHint is the "
            "upstream's own claim")


def _state(doc: PolicyDocument, entry: ToolEntry | None, facts: ToolFacts, trace: list[Step] | None) -> str:
    listed = entry.state if entry is not None else "pending"
    if listed != "pending":
        if trace is not None:
            trace.append(Step("state", listed == "approved", f"tools[\"{facts.key}\"].state is \"{listed}\""))
        return listed
    class_allows = entry is None or entry.classification in (None, "read")
    untrusted = _untrusted_claim(doc, facts)
    auto = doc.auto_approve == "read_only" and facts.read_only and class_allows and untrusted is None
    if trace is not None:
        where = "not in the policy (pending review)" if entry is None else "\"pending\" in the policy"
        if auto:
            evidence = ("a built-in connector's read tool" if facts.builtin else
                        f"readOnlyHint, and its upstream '{facts.upstream}' is in defaults.trust_annotations")
            trace.append(Step("state", True, f"{where}, approved by defaults.auto_approve = \"read_only\" "
                                             f"(the tool is read-only: {evidence})"))
        elif doc.auto_approve == "read_only":
            if not facts.read_only:
                why = "the tool is not read-only (no readOnlyHint)"
            elif not class_allows:
                why = f"its policy class is \"{entry.classification if entry else None}\""
            else:
                why = str(untrusted)
            trace.append(Step("state", False, f"{where}; auto_approve = \"read_only\" does not apply: {why}"))
        else:
            trace.append(Step("state", False, f"{where}; defaults.auto_approve is \"none\""))
    return "approved" if auto else "pending"


def _fail_closed(facts: ToolFacts, trace: list[Step] | None, code: str, detail: str, why: str,
                 then: str) -> Decision:
    """No upstream tool is available because no policy is in force: `why` says what is wrong with it, `then`
    what follows and what the user can do."""
    if trace is not None:
        trace.append(Step("policy", False, detail))
    return Decision(False, "unknown", code,
                    f"'{facts.exposed_name}' is not available: {why}, so no upstream tool is available {then}")


def evaluate(doc: PolicyDocument | None, facts: ToolFacts, user: str | None, now: float, *,
             no_policy_reason: str = "no policy has been synced yet", trace: list[Step] | None = None) -> Decision:
    """The decision for one tool and user; with `trace`, every rule checked is appended to it."""
    if doc is None:
        return _fail_closed(facts, trace, "no_policy", f"no valid policy: {no_policy_reason}",
                            f"no valid approval policy is active ({no_policy_reason})",
                            "(fail closed). The user can run `mcp-access-proxy policy sync` and "
                            "`mcp-access-proxy policy status` in a terminal to see why, or ask the administrator "
                            "to publish a valid policy.")
    rev = f"revision {doc.revision}"
    if doc.expired(now):
        expired = f"expired at {format_time(doc.expires_at)}"
        return _fail_closed(facts, trace, "expired", f"{rev} {expired}", f"the approval policy ({rev}) {expired}",
                            "until a newer one is fetched. The user can run `mcp-access-proxy policy sync`; if it "
                            "stays expired, the administrator must publish a new revision with a later expires_at.")
    if trace is not None:
        trace.append(Step("policy", True, f"{rev}, valid until {format_time(doc.expires_at)}"))
    entry = doc.tools.get(facts.key)
    state = _state(doc, entry, facts, trace)
    if state == "disabled":
        return Decision(False, "disabled", "disabled",
                        f"'{facts.exposed_name}' ({facts.key}) is disabled by the organisation's approval policy "
                        f"({rev})." + _ask(facts, "re-enable it (state \"approved\")"))
    if state != "approved":
        return Decision(False, "pending", "pending",
                        f"'{facts.exposed_name}' ({facts.key}) is pending review: the organisation's approval "
                        f"policy ({rev}) has not approved it."
                        + _ask(facts, f"set tools[\"{facts.key}\"].state to \"approved\" with its sha256"))
    pinned = entry.sha256 if entry is not None else None
    if pinned is None:
        if trace is not None:
            trace.append(Step("definition", None, f"not pinned (no sha256); current hash {facts.definition_hash}"))
    elif pinned != facts.definition_hash:
        if trace is not None:
            trace.append(Step("definition", False, f"approved sha256 {pinned} differs from the current "
                                                   f"definition {facts.definition_hash}: pending review again"))
        return Decision(False, "pending", "definition_changed",
                        f"'{facts.exposed_name}' ({facts.key}) changed upstream since it was approved (its name, "
                        "title, description, schemas or annotations differ), so it is pending review again."
                        + _ask(facts, f"review the new definition and set its sha256 to {facts.definition_hash}"))
    elif trace is not None:
        trace.append(Step("definition", True, f"sha256 {pinned} matches the current definition"))
    if not doc.profiles:
        if trace is not None:
            trace.append(Step("profiles", None, "the policy defines no profiles: approved tools are for everyone"))
        return Decision(True, "approved", "approved", f"'{facts.exposed_name}' is approved ({rev}).")
    mine = user_profiles(doc, user)
    sets = matching_toolsets(doc, facts.key)
    granting = [p.name for p in doc.profiles if p.name in mine and any(t in sets for t in p.toolsets)]
    if trace is not None:
        trace.append(Step("profiles", bool(granting),
                          f"user {user or '(unknown: set [user] email)'} is in profiles {mine or 'none'}; "
                          f"toolsets matching {facts.key}: {sets or 'none'}"
                          + (f"; granted by {', '.join(granting)}" if granting else "; no profile grants it")))
    if not granting:
        who = user or "this user (no [user] email is configured)"
        return Decision(False, "approved", "not_in_profile",
                        f"'{facts.exposed_name}' ({facts.key}) is approved, but none of the policy profiles of "
                        f"{who} includes it ({rev})."
                        + _ask(facts, "add it to a toolset of one of the user's profiles (or add the user to a "
                                      "profile that has it)"))
    return Decision(True, "approved", "approved",
                    f"'{facts.exposed_name}' is approved for {user} by profile {granting[0]} ({rev}).")
