"""Masking of personal fields for responses and exports.

- ID number: the 6-digit region code and the last 4 characters stay,
  ``610103********1234``.
- Mobile: the first 3 and the last 4 digits stay, ``138****1234``.
- Name: the first character stays and every other character becomes ``*``
  (``张三`` → ``张*``, ``张三丰`` → ``张**``, ``欧阳娜娜`` → ``欧***``). A one-character
  name becomes ``*``. Compound surnames are not detected, so they lose their
  second character too.
- Home location: only the community, its street and its district remain; the
  point and the address are dropped.

Every helper takes an already validated value; input of another shape is masked
completely instead of raising, so no branch can leak the value.
"""

from dataclasses import dataclass

from geo.regions import Regions

MASK = "*"


def mask_id_number(value: str) -> str:
    """Return an 18-character ID number with its 8 middle characters (the birth date) masked."""
    if len(value) != 18:
        return MASK * len(value)
    return value[:6] + MASK * 8 + value[-4:]


def mask_mobile(value: str) -> str:
    """Return an 11-digit mobile number with its 4 middle digits masked."""
    if len(value) != 11:
        return MASK * len(value)
    return value[:3] + MASK * 4 + value[-4:]


def mask_name(value: str) -> str:
    """Return a name with every character but the first masked."""
    name = value.strip()
    if len(name) <= 1:
        return MASK * len(name)
    return name[0] + MASK * (len(name) - 1)


@dataclass(frozen=True, slots=True)
class CommunityLevelLocation:
    """A home location generalised to its community (社区/村), with street and district names."""

    community_code: str
    community_name: str
    street_name: str | None
    district_name: str | None

    def label(self) -> str:
        """Return the names from district to community, e.g. ``雁塔区 小寨路街道 某某社区``."""
        parts = [self.district_name, self.street_name, self.community_name]
        return " ".join(part for part in parts if part)


def generalise_home(community_code: str, regions: Regions) -> CommunityLevelLocation | None:
    """Return the community-level location of a home in community ``community_code``.

    The caller passes only the 12-digit community code of the home, never its
    point or address. Returns None for a code that ``regions`` does not know,
    so the caller shows nothing rather than a finer location.
    """
    community = regions.community_by_code(community_code)
    if community is None:
        return None
    street = regions.street_by_code(community.street_code)
    district = regions.district(community.district_code)
    return CommunityLevelLocation(
        community_code=community.code,
        community_name=community.name,
        street_name=None if street is None else street.name,
        district_name=None if district is None else district.name,
    )
