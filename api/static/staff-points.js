// Point inputs of the staff forms (新增锚点 and the edit panel): a longitude and a latitude
// input drawn as a small marker on the map, set by a map click or by dragging the marker.
// Both forms draw their points with the classes staff-point and staff-point-<kind> from
// pages.css, which the map legend reuses.
"use strict";

window.DoorstepStaffPoints = (function () {
  const D = window.Doorstep;
  const t = D.messages;

  // A coordinate typed as text: null when empty, NaN when not a number.
  function readCoordinate(node) {
    const text = node.value.trim();
    return text === "" ? null : Number(text);
  }

  function isDrawable(point) {
    return point.lon !== null && point.lat !== null && Number.isFinite(point.lon) && Number.isFinite(point.lat);
  }

  // The prompt shown after a "在地图上选取" button, where label names the point (入口, 班车站点).
  function pickPrompt(label) {
    return D.format(t.staff_pick_prompt, { target: label });
  }

  // Bind a lon and a lat input to a marker on the map. options: lon, lat (the inputs), kind
  // (pin, entrance or shuttle: the marker class), size (pixels, default 14), title, and
  // draggable with onDragEnd() called after a drag has written the new point.
  function pointField(map, options) {
    const size = options.size || 14;
    let marker = null;

    function read() {
      return { lon: readCoordinate(options.lon), lat: readCoordinate(options.lat) };
    }

    function anyTyped() {
      return options.lon.value.trim() !== "" || options.lat.value.trim() !== "";
    }

    function remove() {
      if (marker) {
        map.removeLayer(marker);
        marker = null;
      }
    }

    function addMarker(point) {
      marker = L.marker([point.lat, point.lon], {
        draggable: Boolean(options.draggable),
        keyboard: false,
        zIndexOffset: 1000,
        title: options.title || "",
        icon: L.divIcon({ className: "staff-point staff-point-" + options.kind, iconSize: [size, size] }),
      }).addTo(map);
      if (options.draggable) {
        marker.on("dragend", function () {
          set(marker.getLatLng());
          if (options.onDragEnd) {
            options.onDragEnd();
          }
        });
      }
    }

    // Draw the typed point. An incomplete point, or one that is not a number, has no marker.
    function show() {
      const point = read();
      if (!isDrawable(point)) {
        remove();
      } else if (marker) {
        marker.setLatLng([point.lat, point.lon]);
      } else {
        addMarker(point);
      }
    }

    function set(latlng) {
      options.lon.value = latlng.lng.toFixed(6);
      options.lat.value = latlng.lat.toFixed(6);
      show();
    }

    function clear() {
      options.lon.value = "";
      options.lat.value = "";
      remove();
    }

    // Read the point, or call report(message) once per input that is not a number and
    // return undefined.
    function readChecked(report) {
      const point = read();
      let valid = true;
      [["lon", point.lon], ["lat", point.lat]].forEach(function (pair) {
        if (pair[1] !== null && !Number.isFinite(pair[1])) {
          report(D.format(t.staff_not_a_number, { label: t.staff_field_labels[pair[0]] }));
          valid = false;
        }
      });
      return valid ? point : undefined;
    }

    return {
      read: read,
      readChecked: readChecked,
      anyTyped: anyTyped,
      show: show,
      set: set,
      clear: clear,
      remove: remove,
      latLng: function () { return marker ? marker.getLatLng() : null; },
    };
  }

  return { pointField: pointField, pickPrompt: pickPrompt, readCoordinate: readCoordinate };
})();
