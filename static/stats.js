// Charts of the statistics page, drawn from the JSON the server put in #stats-data (the
// same numbers are in the tables under each chart).
(function () {
  var el = document.getElementById('stats-data');
  if (!el || typeof Chart === 'undefined') return;
  var d = JSON.parse(el.textContent);
  var colors = ['#0d6efd', '#198754', '#6f42c1', '#fd7e14', '#20c997', '#dc3545'];
  var series = document.getElementById('chart-series');
  if (series) {
    new Chart(series, {
      type: 'line',
      data: {
        labels: d.series.map(function (b) { return b.start.replace('T00:00', '').replace('T', ' '); }),
        datasets: d.metrics.map(function (m, i) {
          return {
            label: (d.labels && d.labels[m]) || m,
            data: d.series.map(function (b) { return b.values[m] || 0; }),
            borderColor: colors[i % colors.length], backgroundColor: colors[i % colors.length],
            tension: 0.2, pointRadius: d.series.length > 60 ? 0 : 2, hidden: i > 3
          };
        })
      },
      options: { animation: false, interaction: { mode: 'index', intersect: false },
                 scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }
    });
  }
  function bars(id, labels, values, color) {
    var c = document.getElementById(id);
    if (!c || !labels.length) return;
    new Chart(c, {
      type: 'bar',
      data: { labels: labels, datasets: [{ data: values, backgroundColor: color }] },
      options: { animation: false, indexAxis: 'y', plugins: { legend: { display: false } },
                 scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } }
    });
  }
  bars('chart-rules', d.rules.map(function (r) { return r.title || r.id; }), d.rules.map(function (r) { return r.hits; }), '#0d6efd');
  bars('chart-reasons', d.reasons.map(function (r) { return (d.reason_labels && d.reason_labels[r[0]]) || r[0]; }), d.reasons.map(function (r) { return r[1]; }), '#fd7e14');
})();
