"""Reference-model labels on the 2-D front, placed in the page where the text can be measured.

Positions chosen in Python would hold for the first axes only (the page switches axes, log
scales and zooms) and could only guess text widths. The page script instead measures each
name (canvas ``measureText`` in the label font), then places labels greedily: for each star,
the first candidate offset (8 directions, growing radii) whose box stays inside the plot and
clear of every label already placed and of every star; a thin line ties a moved label to its
star. It runs after the first draw and after every axis change, zoom or resize.
"""

from __future__ import annotations

from nas.dashboard._figures import REFERENCE_COLOUR, REFERENCE_META

__all__ = ["LABEL_FONT_PX", "LABEL_SCRIPT"]

LABEL_FONT_PX = 11

LABEL_SCRIPT = """
(function(){
  var gd = document.getElementById('fig-pareto2d');
  if (!gd) return;
  var META = '__META__', FONT_PX = __FONT__, PAD = 3, STAR = 9;
  var ctx = document.createElement('canvas').getContext('2d');
  function width(text){
    ctx.font = FONT_PX + 'px ' + ((gd._fullLayout.font || {}).family || 'sans-serif');
    return ctx.measureText(text).width + 4;
  }
  function overlap(a, b){
    var w = Math.min(a.x1, b.x1) - Math.max(a.x0, b.x0) + PAD;
    var h = Math.min(a.y1, b.y1) - Math.max(a.y0, b.y0) + PAD;
    return (w > 0 && h > 0) ? w * h : 0;
  }
  var OFFSETS = [];
  [18, 32, 48, 66, 88, 112].forEach(function(r){
    [[0, -1], [1, 0], [0, 1], [-1, 0], [1, -1], [1, 1], [-1, 1], [-1, -1]].forEach(function(d){
      OFFSETS.push([d[0] * r, d[1] * r * 0.7]);
    });
  });
  function place(){
    var L = gd._fullLayout;
    if (!L || !L.xaxis || !L.xaxis._length) return;
    var xa = L.xaxis, ya = L.yaxis, W = xa._length, H = ya._length;
    var points = [];
    (gd._fullData || []).forEach(function(t){
      if (t.meta !== META || t.visible !== true) return;
      for (var i = 0; i < (t.x || []).length; i++) {
        var px = xa.c2p(t.x[i]), py = ya.c2p(t.y[i]);
        if (isFinite(px) && isFinite(py) && px >= 0 && px <= W && py >= 0 && py <= H)
          points.push({x: t.x[i], y: t.y[i], px: px, py: py, text: String(t.text[i])});
      }
    });
    var taken = points.map(function(p){
      return {x0: p.px - STAR, x1: p.px + STAR, y0: p.py - STAR, y1: p.py + STAR};
    });
    points.sort(function(a, b){ return a.py - b.py || a.px - b.px; });
    var notes = points.map(function(p){
      var w = width(p.text), h = FONT_PX + 4, best = null, bestCost = Infinity;
      for (var k = 0; k < OFFSETS.length; k++) {
        var cx = p.px + OFFSETS[k][0], cy = p.py + OFFSETS[k][1];
        var box = {x0: cx - w / 2, x1: cx + w / 2, y0: cy - h / 2, y1: cy + h / 2};
        var out = box.x0 < 0 || box.x1 > W || box.y0 < 0 || box.y1 > H;
        var cost = out ? 1e9 : 0;
        taken.forEach(function(b){ cost += overlap(box, b); });
        if (cost === 0) { best = [OFFSETS[k], box]; break; }
        if (cost < bestCost) { bestCost = cost; best = [OFFSETS[k], box]; }
      }
      taken.push(best[1]);
      var lx = xa.type === 'log' ? Math.log10(p.x) : p.x;
      var ly = ya.type === 'log' ? Math.log10(p.y) : p.y;
      return {x: lx, y: ly, text: p.text, ax: best[0][0], ay: best[0][1], name: META,
              showarrow: true, arrowhead: 0, arrowwidth: 0.8, arrowcolor: '__COLOUR__',
              standoff: 7, font: {size: FONT_PX, color: '__COLOUR__'},
              xref: 'x', yref: 'y', axref: 'pixel', ayref: 'pixel',
              bgcolor: 'rgba(255,255,255,0.75)'};
    });
    var keep = (L.annotations || []).filter(function(a){ return a.name !== META; })
      .map(function(a){ return a._input || a; });
    gd._nasPlacing = true;
    Plotly.relayout(gd, {annotations: keep.concat(notes)}).then(function(){
      gd._nasPlacing = false;
    });
  }
  window.nasPlaceLabels = place;
  gd.on('plotly_relayout', function(ev){
    if (gd._nasPlacing || (ev && Object.keys(ev).every(function(k){
      return k.indexOf('annotations') === 0; }))) return;
    place();
  });
  gd.on('plotly_update', function(){ if (!gd._nasPlacing) place(); });
  gd.on('plotly_restyle', function(){ if (!gd._nasPlacing) place(); });
  (function ready(){
    if (gd._fullLayout && gd._fullLayout.xaxis && gd._fullLayout.xaxis._length) place();
    else setTimeout(ready, 50);
  })();
})();
"""
LABEL_SCRIPT = (
    LABEL_SCRIPT.replace("__META__", REFERENCE_META)
    .replace("__FONT__", str(LABEL_FONT_PX))
    .replace("__COLOUR__", REFERENCE_COLOUR)
)
