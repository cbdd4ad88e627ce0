<?php
// Written for this suite: serves Debian's adminer.php at /, as the official image's index.php does.
require '/usr/share/adminer/adminer.php';
