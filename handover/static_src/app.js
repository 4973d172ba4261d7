// Progressive enhancement only: every page works without this. Loaded as a module at the end of
// <body>; starts GOV.UK Frontend's components (error summary focus, navigation menu, buttons, ...).
import { initAll } from "./govuk-frontend.min.js";

initAll();
