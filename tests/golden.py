"""Golden embedding values for the default model (first 8 dimensions), measured once."""

GOLDEN_VECTORS = {
    ('query', "Qu'est-ce que Kantar prévoit pour le social commerce ?"): [0.01596, -0.03771, -0.05737, -0.02925, 0.03744, -0.05733, 0.06579, 0.07665],
    ('passage', 'Moins d’acquisitions, mais davantage de partenariats.'): [-0.00317, 0.00655, -0.05453, -0.06788, 0.09070, -0.08071, 0.03195, 0.02935],
    ('query', 'How long is the trends booklet?'): [0.03211, -0.01554, -0.05608, -0.03428, 0.06679, -0.07884, 0.04061, -0.01446],
}
