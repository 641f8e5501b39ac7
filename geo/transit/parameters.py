"""Speeds, waits and limits of the transit model, each with its source or marked as an assumption.

All values describe a weekday peak-hour commute. Distances are metres, speeds km/h
and times minutes. Detour factors multiply a straight-line (haversine) distance to
estimate the distance walked, cycled or driven on the street network.
"""

from dataclasses import dataclass

METRO_HEADWAYS_MIN: tuple[tuple[str, float], ...] = (
    # Minimum headways of 4 min 16 s (line 1) and 2 min 58 s (line 2) as stated by
    # Xi'an Metro's operating company in a news.hsw.cn report of 2016-09-19.
    ("1", 4.27),
    ("2", 2.97),
    # 西户线 (a suburban railway) ran 3 train pairs per peak, 70 min apart, in its
    # 2022 trial service (Xi'an Rail Transit Group, reported 2022-10-31).
    ("西户线", 70.0),
)
"""Peak headway in minutes of the metro lines with a published figure, by line id."""


@dataclass(frozen=True)
class TransitParameters:
    """Every tunable value of `geo.transit.TransitNetwork`, in one place.

    Expected waits are half the headway (passengers arriving at random), capped at
    ``max_expected_wait_min``.
    """

    # Walking.
    # Murtagh et al. 2020, "Outdoor walking speeds of apparently healthy adults: a
    # systematic review and meta-analysis", Sports Medicine 51:125-141: usual outdoor
    # pace 1.31 m/s, which is 4.7 km/h.
    walk_speed_kmh: float = 4.7
    # Assumption. The Wikibooks page "Transportation Geography and Network
    # Science/Circuity" reports ratios of network to straight-line distance of about 1.2
    # between random urban points (Newell 1980) and 1.21-1.23 around transit stations
    # (O'Sullivan 1996). Gated residential compounds make walks in Xi'an longer, so 1.3.
    walk_detour_factor: float = 1.3
    # Assumption: the farthest metro station or bus stop a commuter walks to, straight
    # line (about 17 minutes on foot with the detour factor).
    max_access_walk_m: float = 1_000.0
    # Assumption: the farthest walk between two stops or stations to change lines.
    max_transfer_walk_m: float = 500.0
    # Assumption: how many of the nearest metro stations and bus stops within
    # max_access_walk_m are tried at each end of a trip.
    access_stations: int = 3
    access_bus_stops: int = 8

    # Metro.
    # In-vehicle speed over the straight-line distance between consecutive stations,
    # dwell times included. Calibrated on line 2: Xi'an Metro stated 47 minutes for its
    # first phase, 西安北站 (then 北客站) to 韦曲南 over 20 sections (sanqinyou.com report
    # of 2014-06-16). The straight lines between those 21 stations sum to 26.50 km, so
    # the speed is 33.8 km/h.
    metro_speed_kmh: float = 33.8
    # Headway per line id at the peak, minutes; lines not listed use the default.
    metro_headway_min: tuple[tuple[str, float], ...] = METRO_HEADWAYS_MIN
    # Assumption for the lines without a published figure.
    default_metro_headway_min: float = 6.0
    # Assumption: walking from the street to the platform, security check included
    # (the station data has no entrances).
    station_entry_min: float = 2.0
    # Assumption: platform to street.
    station_exit_min: float = 1.5
    # Walking between platforms at an interchange. The Baidu transit planner's walks at
    # Xi'an interchanges range from 122 to 293 s (openmetro, Naptie/openmetro
    # data/cn-xian/transfers.json, 2026-09).
    transfer_walk_min: float = 4.0
    # Assumption: riders of infrequent services (西户线) plan their arrival by the
    # timetable instead of waiting half a headway.
    max_expected_wait_min: float = 10.0

    # Bus.
    # Xi'an Transport Bureau: peak-hour operating speed of city buses 17.27 km/h in the
    # first half of a year. The report is republished at m.91383.cn/2803/256171.html,
    # and the page does not state the year.
    bus_speed_kmh: float = 17.0
    # Assumption: a 10-minute peak headway, so an expected wait of 5 minutes.
    bus_headway_min: float = 10.0
    # Assumption: spacing of the pseudo-stops derived along each bus line, which has no
    # stop data.
    bus_stop_spacing_m: float = 500.0
    # Grid cell in metres (EPSG:4545) whose pseudo-stops form one boarding and transfer
    # node. A modelling choice: larger cells make the network faster to build and
    # coarser.
    bus_cell_m: float = 750.0

    # Cycling and driving, door to door along the street network.
    # Assumption, the same speed as the straight-line commute model.
    bike_speed_kmh: float = 12.0
    # Assumption, as for walking.
    bike_detour_factor: float = 1.3
    # Assumption: peak-hour average over the city. The peak speed in 碑林区, the most
    # congested district, was reported as 18.5 km/h in a road network density report
    # (dcwnkz.com).
    drive_speed_kmh: float = 25.0
    # Assumption, as for walking.
    drive_detour_factor: float = 1.3
    # Assumption: walking to the car, and parking at the workplace.
    drive_overhead_min: float = 5.0

    # Modelling limit: network trips between stops longer than this are not searched,
    # so the other modes decide those pairs. It is 1.5 times the longest commute limit
    # (60 minutes) that the seeker simulation draws, and it sets most of the build time
    # (the all-pairs search stops there).
    # NOTE: a seeker limit above about 90 minutes misses transit trips longer than this.
    max_transit_min: float = 90.0

    def metro_wait_min(self, line_id: str) -> float:
        """Return the expected wait in minutes for a train of ``line_id``."""
        headway = dict(self.metro_headway_min).get(line_id, self.default_metro_headway_min)
        return min(headway / 2.0, self.max_expected_wait_min)

    @property
    def bus_wait_min(self) -> float:
        """Expected wait in minutes for a bus."""
        return min(self.bus_headway_min / 2.0, self.max_expected_wait_min)

    @property
    def walk_m_per_min(self) -> float:
        """Walking speed in metres per minute along the street network."""
        return self.walk_speed_kmh * 1000.0 / 60.0
