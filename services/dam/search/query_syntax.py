"""The web-search syntax of `q` (quotes, OR, -word), parsed as PostgreSQL's `websearch_to_tsquery` reads it:
the query is an OR of groups, a group an AND of words and "quoted phrases", each of which `-` negates.
`a b OR c -d` means (a AND b) OR (c AND NOT d). The postgres backend hands `q` to websearch_to_tsquery
itself; the Elasticsearch backend builds the same logic from this parse (a bool of combined_fields /
multi_match phrase queries), so both answer one query alike."""

from __future__ import annotations

import re
from dataclasses import dataclass

# A token: an optional `-`, then a "quoted phrase" (closed or running to the end) or a bare word.
_TOKEN = re.compile(r'(-?)"([^"]*)"?|(-?)(\S+)')


@dataclass(frozen=True)
class Term:
    text: str
    phrase: bool = False
    negated: bool = False


def parse(q: str) -> list[list[Term]]:
    """Groups joined by OR; within a group every positive term must match and no negated one may."""
    groups: list[list[Term]] = [[]]
    for match in _TOKEN.finditer(q):
        if match.group(2) is not None:
            negated, body, phrase = bool(match.group(1)), match.group(2), True
        else:
            negated, body, phrase = bool(match.group(3)), match.group(4), False
            if body.lower() == "or" and not negated:
                if groups[-1]:
                    groups.append([])
                continue
        body = body.strip()
        if body:
            groups[-1].append(Term(body, phrase=phrase, negated=negated))
    return [g for g in groups if g]


def es_query(q: str, fields: list[str]) -> dict:
    """The Elasticsearch query of `q` over `fields` (boosts as `name^3`). Words of a group are matched as
    one combined field (all must occur, in any of the fields, as in one tsvector); phrases within a field."""

    def words(text: str) -> dict:
        return {"combined_fields": {"query": text, "fields": fields, "operator": "and"}}

    def phrase(text: str) -> dict:
        return {"multi_match": {"query": text, "fields": fields, "type": "phrase"}}

    clauses = []
    for group in parse(q):
        plain = " ".join(t.text for t in group if not t.phrase and not t.negated)
        must = ([words(plain)] if plain else []) + [phrase(t.text) for t in group if t.phrase and not t.negated]
        must_not = [phrase(t.text) if t.phrase else words(t.text) for t in group if t.negated]
        clauses.append({"bool": {"must": must, "must_not": must_not}})
    if not clauses:
        return {"match_none": {}}
    if len(clauses) == 1:
        return clauses[0]
    return {"bool": {"should": clauses, "minimum_should_match": 1}}
