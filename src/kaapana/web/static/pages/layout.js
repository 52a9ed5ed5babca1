// Pages without behaviour of their own (home, audit, system, errors) need only the frame.
import { initLayout } from "../layout.js";

initLayout();
