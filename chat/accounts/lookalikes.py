"""Names that look alike: a new name is refused when, on screen, it reads as a name someone already has
("aIice" with a capital I, "alice." or "b0b" while "alice" and "bob" exist).

Two names are alike when their skeletons are equal: Unicode TR39's confusable check (section 4,
https://www.unicode.org/reports/tr39/#Confusable_Detection). Sign-up names are ASCII only
(forms.SignupForm), and among ASCII characters TR39's data (confusables.txt) maps only these: 1, I and | to
l, 0 to O, m to rn (and ` and ", which names cannot hold). So the skeleton here is that mapping, plus what
TR39 leaves to the caller:
- letter case never tells two people apart (Django's sign-up already refuses "Alice" beside "alice"),
  which is why the mapping comes first ("I" is l, not i) and then the case is folded;
- the separators . _ - are easy to miss at the end or in the middle of a name;
- names made in the admin may hold other letters: those are folded to their base letter where they have
  one (NFKD, combining marks dropped: "álice" reads as "alice"). Letters of other scripts that only look
  like Latin ones (Cyrillic a, U+0430) are not mapped: sign-up refuses them outright.

Every existing name is read to compare (one indexed column, no model field to keep in step): sign-ups are
rare and rate-limited, and at 100,000 users this is a few hundred milliseconds of one sign-up.
"""

import unicodedata

from django.contrib.auth import get_user_model

CONFUSED = str.maketrans({"1": "l", "I": "l", "|": "l", "0": "O"})
SEPARATORS = str.maketrans("", "", "._-")


def skeleton(name: str) -> str:
    """What a name looks like: equal skeletons, names nobody can tell apart at a glance."""
    letters = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    return letters.translate(CONFUSED).casefold().replace("m", "rn").translate(SEPARATORS)


def lookalike(name: str, *, exclude_pk: object = None) -> str | None:
    """The existing name that `name` would be taken for, if any (not the same name in another case: that one
    is simply taken)."""
    wanted = skeleton(name)
    users = get_user_model()
    names = users.objects.exclude(pk=exclude_pk).values_list(users.USERNAME_FIELD, flat=True)
    for existing in names.iterator(chunk_size=2000):
        if skeleton(existing) == wanted and existing.casefold() != name.casefold():
            return existing
    return None
