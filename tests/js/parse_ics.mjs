// Read .ics files with ical.js (the parser inside Thunderbird's calendar) and print what it sees
// as JSON. Time zones come only from each file's own VTIMEZONEs, as Outlook reads them, so the
// instants printed test the VTIMEZONEs we write, not a zone database ical.js might carry.
import { readFileSync } from "node:fs";
import ICAL from "ical.js";

const value = (component, name) => {
  const prop = component.getFirstProperty(name);
  return prop === null ? null : prop.getFirstValue();
};

const results = process.argv.slice(2).map((path) => {
  ICAL.TimezoneService.reset();
  const root = new ICAL.Component(ICAL.parse(readFileSync(path, "utf8")));
  const timezones = root.getAllSubcomponents("vtimezone").map((vtz) => {
    const zone = new ICAL.Timezone(vtz);
    ICAL.TimezoneService.register(zone, vtz.getFirstPropertyValue("tzid"));
    return zone.tzid;
  });
  const events = root.getAllSubcomponents("vevent").map((vevent) => {
    const event = new ICAL.Event(vevent);
    const attendees = vevent.getAllProperties("attendee").map((p) => ({
      address: p.getFirstValue(),
      cn: p.getParameter("cn") ?? null,
      partstat: p.getParameter("partstat") ?? null,
    }));
    const organizer = vevent.getFirstProperty("organizer");
    return {
      uid: event.uid,
      sequence: event.sequence,
      status: value(vevent, "status"),
      summary: event.summary,
      description: event.description,
      location: event.location,
      url: value(vevent, "url"),
      conference: value(vevent, "conference"),
      start_tzid: event.startDate.zone ? event.startDate.zone.tzid : null,
      end_tzid: event.endDate.zone ? event.endDate.zone.tzid : null,
      start: event.startDate.toUnixTime(),
      end: event.endDate.toUnixTime(),
      organizer: organizer === null ? null : organizer.getFirstValue(),
      attendees,
    };
  });
  return {
    path,
    method: value(root, "method"),
    name: value(root, "name"),
    x_wr_calname: value(root, "x-wr-calname"),
    timezones,
    events,
  };
});
process.stdout.write(JSON.stringify(results));
